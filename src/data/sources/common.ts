/**
 * What every dataset source provides, and the cache writer: a built dataset becomes
 * NAME/{train,test}-{images-idx4,labels-idx1}-ubyte.gz plus NAME/manifest.json, written into a temporary
 * folder and renamed into place, so the cache never holds half a dataset.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type RemoteFile } from '../download';
import { type Inputs, type InputEntry } from '../formats/archive';
import { DataFileError, gunzipIfNeeded, parseIdx, writeIdx } from '../idx';
import { type DatasetInfo } from '../datasets';
import { type Image, ImageFormatError, decodeImage, resizeBilinear, toChannels } from '../formats/image';
import { arrayField, asUint8, unpickle, PickleError } from '../formats/pickle';
import { Rng } from '../../core/rng';

export interface BuiltSplit {
  n: number;
  /** N*H*W*C bytes, HWC. */
  images: Uint8Array;
  labels: Uint8Array;
}

export interface Built {
  /** Per-sample [H, W, C]. */
  shape: [number, number, number];
  train: BuiltSplit;
  test: BuiltSplit;
  /** Which distribution the inputs were ('binary', 'pickle', 'images', ...). */
  variant: string;
  /** What was done to the source's pixels and labels. */
  conversion: string;
  /** Input members used (paths inside the inputs). */
  used: string[];
}

export interface SourceVariant {
  id: string;
  description: string;
  files: RemoteFile[];
}

export interface DatasetSource {
  name: string;
  /** Downloadable distributions; the first is the default of `hat data get`. */
  variants: SourceVariant[];
  /** What `--from` accepts (for help and messages). */
  accepts: string;
  /** Tar members worth keeping in memory (the rest of a tar is skipped). */
  want?: RegExp;
  /** Builds the dataset from whatever the inputs hold (detects the distribution). */
  build(inputs: Inputs, log: (message: string) => void): Promise<Built>;
}

export { CACHE_FILES, InputRecord, MANIFEST, Manifest, readManifest } from '../manifest';
import { CACHE_FILES, type InputRecord, MANIFEST, type Manifest } from '../manifest';

function perClass(labels: Uint8Array, classes: number): number[] {
  const h = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) h[labels[i]]++;
  return h;
}

export const ADVICE_SOURCE = 'Check that the file is the one named in `hat data get --help`, or download it again.';

function checkSplit(split: BuiltSplit, shape: number[], info: DatasetInfo, which: string): void {
  const size = shape[0] * shape[1] * shape[2];
  if (split.images.length !== split.n * size || split.labels.length !== split.n) {
    throw new DataFileError(
      info.name,
      `the ${which} split has ${split.images.length} image bytes and ${split.labels.length} labels for ${split.n} samples of ${shape.join('x')}`,
      ADVICE_SOURCE,
    );
  }
  if (split.n === 0) throw new DataFileError(info.name, `the ${which} split is empty`, ADVICE_SOURCE);
  for (let i = 0; i < split.labels.length; i++) {
    if (split.labels[i] >= info.classes)
      throw new DataFileError(
        info.name,
        `${which} label ${split.labels[i]} at ${i} is out of range for ${info.classes} classes`,
        ADVICE_SOURCE,
      );
  }
}

/**
 * Writes the dataset's four IDX files and its manifest into DIR/NAME atomically (a temporary sibling
 * folder renamed into place; an existing NAME is replaced only once the new one is complete).
 */
export function writeDataset(
  dir: string,
  info: DatasetInfo,
  built: Built,
  source: { description: string; how: 'download' | 'import'; inputs: InputRecord[] },
): Manifest {
  checkSplit(built.train, built.shape, info, 'train');
  checkSplit(built.test, built.shape, info, 'test');
  const final = path.join(dir, info.name);
  const tmp = path.join(dir, `.${info.name}.${process.pid}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const files: Manifest['files'] = {};
    for (const split of ['train', 'test'] as const) {
      const s = built[split];
      const img = `${split}-images-idx4-ubyte.gz`;
      const lab = `${split}-labels-idx1-ubyte.gz`;
      writeIdx(path.join(tmp, img), { shape: [s.n, ...built.shape], data: s.images });
      writeIdx(path.join(tmp, lab), { shape: [s.n], data: s.labels });
    }
    for (const f of CACHE_FILES) {
      const bytes = fs.readFileSync(path.join(tmp, f));
      files[f] = { bytes: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') };
    }
    const manifest: Manifest = {
      manifest: 1,
      dataset: info.name,
      title: info.title,
      classes: info.classes,
      shape: [...built.shape],
      train: { n: built.train.n, perClass: perClass(built.train.labels, info.classes) },
      test: { n: built.test.n, perClass: perClass(built.test.labels, info.classes) },
      source: {
        variant: built.variant,
        description: source.description,
        how: source.how,
        inputs: source.inputs,
        used: built.used,
      },
      conversion: built.conversion,
      files,
    };
    fs.writeFileSync(path.join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    const old = path.join(dir, `.${info.name}.${process.pid}.old`);
    if (fs.existsSync(final)) fs.renameSync(final, old);
    fs.renameSync(tmp, final);
    fs.rmSync(old, { recursive: true, force: true });
    return manifest;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// helpers shared by the sources

const DAMAGED_INPUT = 'The file is damaged: delete it and download it again, or pass a good copy with --from.';

/** An IDX image file (N,H,W) or (N,H,W,C) and its label file, as a split. */
export function idxSplit(
  images: Buffer,
  labels: Buffer,
  imagesName: string,
  labelsName: string,
): { split: BuiltSplit; shape: [number, number, number] } {
  const im = parseIdx(gunzipIfNeeded(images, imagesName, DAMAGED_INPUT), imagesName);
  const lb = parseIdx(gunzipIfNeeded(labels, labelsName, DAMAGED_INPUT), labelsName);
  const shape = im.shape.length === 3 ? [...im.shape, 1] : im.shape;
  if (shape.length !== 4) throw new DataFileError(imagesName, `has shape (${im.shape}), not images`, ADVICE_SOURCE);
  if (lb.shape.length !== 1 || lb.shape[0] !== shape[0])
    throw new DataFileError(
      labelsName,
      `has ${lb.shape[0]} labels for ${shape[0]} images in ${imagesName}`,
      ADVICE_SOURCE,
    );
  return {
    split: { n: shape[0], images: Uint8Array.from(im.data), labels: Uint8Array.from(lb.data) },
    shape: [shape[1], shape[2], shape[3]],
  };
}

/** (N, C, H, W) bytes to (N, H, W, C). */
export function chwToHwc(src: Uint8Array, n: number, c: number, h: number, w: number): Uint8Array {
  const out = new Uint8Array(n * c * h * w);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * c * plane;
    for (let p = 0; p < plane; p++) for (let ch = 0; ch < c; ch++) out[base + p * c + ch] = src[base + ch * plane + p];
  }
  return out;
}

export function concatSplits(parts: BuiltSplit[]): BuiltSplit {
  const n = parts.reduce((a, p) => a + p.n, 0);
  const images = new Uint8Array(parts.reduce((a, p) => a + p.images.length, 0));
  const labels = new Uint8Array(n);
  let io = 0;
  let lo = 0;
  for (const p of parts) {
    images.set(p.images, io);
    labels.set(p.labels, lo);
    io += p.images.length;
    lo += p.n;
  }
  return { n, images, labels };
}

/** Decodes an image member and brings it to size x size x channels (bilinear, see formats/image.ts). */
export async function readImage(entry: InputEntry, size: number, channels: 1 | 3): Promise<Image> {
  const bytes = await entry.read();
  let img: Image;
  try {
    img = decodeImage(bytes);
  } catch (e) {
    if (e instanceof ImageFormatError)
      throw new DataFileError(`${entry.origin}:${entry.path}`, e.message, ADVICE_SOURCE);
    throw e;
  }
  return resizeBilinear(toChannels(img, channels), size, size);
}

/** Packs decoded images and labels, in the given order, into a split. */
export function packImages(images: Image[], labels: number[]): BuiltSplit {
  const size = images.length ? images[0].data.length : 0;
  const out = new Uint8Array(images.length * size);
  images.forEach((im, i) => out.set(im.data, i * size));
  return { n: images.length, images: out, labels: Uint8Array.from(labels) };
}

/** The entry matching `pattern`, or a DataFileError saying what is missing. */
export function need(inputs: Inputs, pattern: RegExp, what: string, dataset: string): InputEntry {
  const e = inputs.one(pattern, what);
  if (!e)
    throw new DataFileError(
      dataset,
      `${what} not found among the inputs (${inputs.describe() || 'no files'})`,
      `Pass the dataset's original files with --from (see \`hat data get --help\`).`,
    );
  return e;
}

/**
 * A pickled dict {'features': N x ... uint8/int8 array, 'labels': N} (the reference's TrafficSigns,
 * FaceScrub and NotMNIST files). Features (N,H,W,C) are kept, (N,C,H,W) with C in {1,3} are transposed
 * to HWC (so a CHW-fed network sees what the reference's saw), (N,H,W) gets C = 1. int8 is reinterpreted
 * as uint8 (the reference's astype(np.uint8)).
 */
export function pickleSplit(
  bytes: Uint8Array,
  file: string,
): { split: BuiltSplit; shape: [number, number, number]; layout: 'NHWC' | 'NCHW' | 'NHW'; dtype: string } {
  try {
    const d = unpickle(bytes);
    const f = arrayField(d, 'features', file);
    const labels = asUint8(arrayField(d, 'labels', file), `${file} labels`);
    const s = f.shape;
    const n = s[0];
    if (labels.length !== n)
      throw new DataFileError(file, `has ${labels.length} labels for ${n} images`, ADVICE_SOURCE);
    const data = asUint8(f, `${file} features`);
    const dtype = `${f.dtype.kind}${f.dtype.itemsize}`;
    if (s.length === 3)
      return {
        split: { n, images: Uint8Array.from(data), labels: Uint8Array.from(labels) },
        shape: [s[1], s[2], 1],
        layout: 'NHW',
        dtype,
      };
    if (s.length === 4 && (s[3] === 1 || s[3] === 3))
      return {
        split: { n, images: Uint8Array.from(data), labels: Uint8Array.from(labels) },
        shape: [s[1], s[2], s[3]],
        layout: 'NHWC',
        dtype,
      };
    if (s.length === 4 && (s[1] === 1 || s[1] === 3))
      return {
        split: { n, images: chwToHwc(data, n, s[1], s[2], s[3]), labels: Uint8Array.from(labels) },
        shape: [s[2], s[3], s[1]],
        layout: 'NCHW',
        dtype,
      };
    throw new DataFileError(file, `'features' has shape (${s.join(', ')}), not images`, ADVICE_SOURCE);
  } catch (e) {
    if (e instanceof PickleError)
      throw new DataFileError(file, `cannot be read as a pickle of numpy arrays (${e.message})`, ADVICE_SOURCE);
    throw e;
  }
}

export type PickledSplit = ReturnType<typeof pickleSplit>;

/**
 * A dataset's training and test pickles, found among the inputs by file name and read as splits; `wrong`
 * says what is wrong with one (its features' shape or layout), which stops with that message naming the file.
 */
export async function picklePair(
  inputs: Inputs,
  dataset: string,
  files: { train: string; test: string },
  wrong: (p: PickledSplit, other: PickledSplit) => string | undefined,
): Promise<{ train: PickledSplit; test: PickledSplit; used: string[] }> {
  const entries = [files.train, files.test].map((name) =>
    need(inputs, new RegExp(`/${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), name, dataset),
  );
  const train = pickleSplit(await entries[0].read(), entries[0].path);
  const test = pickleSplit(await entries[1].read(), entries[1].path);
  for (const [p, other, e] of [
    [train, test, entries[0]],
    [test, train, entries[1]],
  ] as const) {
    const message = wrong(p, other);
    if (message) throw new DataFileError(e.path, message, ADVICE_SOURCE);
  }
  return { train, test, used: entries.map((e) => e.path) };
}

/** Deterministic split of n items: a seeded permutation, the first ceil(fraction*n) are test (as sklearn's train_test_split). */
export function seededSplit(n: number, fraction: number, seed: string): { train: Int32Array; test: Int32Array } {
  const perm = new Rng(seed).permutation(n);
  const nTest = Math.ceil(fraction * n);
  return { test: perm.slice(0, nTest), train: perm.slice(nTest) };
}

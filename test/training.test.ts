import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createProgress, fmtTime } from '../src/training/progress';
import { RESULT_FORMAT, readResult } from '../src/runs/result-file';
import { type RunOptions, runExperiment } from '../src/runs/run';
import { NonFiniteLossError } from '../src/training/trainer';
import { isLearner } from '../src/training/types';
import { type MaskUsageExtras } from '../src/runs/monitors';
import { backend } from './helpers';
import { crossEntropy } from '../src/approaches/base';
import { Rng } from '../src/core/rng';

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

test('durations read as people write them, never 42m60s', () => {
  const cases: [number, string][] = [
    [0.04, '0.0s'],
    [12.34, '12.3s'],
    [59.94, '59.9s'],
    [59.96, '1m00s'],
    [61.4, '1m01s'],
    [2579.6, '43m00s'],
    [3599.6, '1h00m'],
    [7385, '2h03m'],
    [Infinity, '?'],
  ];
  for (const [s, text] of cases) assert.equal(fmtTime(s), text, String(s));
});

test("the cross-entropy's one-op gradient gives the bits of tfjs's chain of gradients", async () => {
  await backend();
  const rng = new Rng('cross-entropy');
  const before = tf.memory().numTensors;
  // batches of the usual size and a last small one; logits of ordinary size, far apart (a softmax of 0s and 1s)
  // and with ties; the loss scaled and added to (an approach's regulariser), so the gradient coming in is not 1
  for (const [n, classes, scale] of [
    [64, 10, 1],
    [13, 10, 30],
    [5, 2, 1e-3],
    [64, 100, 4],
  ])
    tf.tidy(() => {
      const logits = tf.tensor2d(
        rng.normalArray(n * classes).map((v, i) => (i % 7 === 0 ? 0 : v * scale)),
        [n, classes],
      );
      const labels = tf.tensor1d(
        Array.from({ length: n }, () => rng.int(classes)),
        'int32',
      );
      const chain = (z: tf.Tensor) =>
        tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, classes), tf.logSoftmax(z)), 1))) as tf.Scalar;
      const objective = (loss: (z: tf.Tensor) => tf.Scalar) => (z: tf.Tensor) =>
        tf.add(tf.mul(loss(z), 0.37), tf.sum(tf.square(z)));
      const [want, got] = [
        tf.grad(objective(chain))(logits),
        tf.grad(objective((z) => crossEntropy(z as tf.Tensor2D, labels)))(logits),
      ];
      const bits = (t: tf.Tensor) => Array.from(new Uint32Array(t.dataSync().slice().buffer));
      assert.deepEqual(bits(got), bits(want), `gradient, ${n}x${classes} logits at scale ${scale}`);
      assert.deepEqual(bits(crossEntropy(logits, labels)), bits(chain(logits)), `loss, ${n}x${classes}`);
    });
  assert.equal(tf.memory().numTensors, before);
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
  assert.equal(partial.status, 'failed', 'the run stopped with an error: its result file says so, and why');
  assert.match(partial.failure!.error, /simulated interruption/);
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

test('a run killed with SIGKILL mid-task and between tasks resumes to the accuracy matrix of an uninterrupted run', async () => {
  const { spawnSync } = await import('node:child_process');
  const root = path.resolve(__dirname, '..');
  // HAT (gate log on) and PathNet (its own loop): 2 tasks, 3 epochs each, a checkpoint after every epoch
  // (PathNet trains 2 paths x 1 epoch per generation for 2 generations: 4 epochs per task)
  for (const [approach, tag, extra, epochsPerTask] of [
    ['hat', 'hat', ['--monitor', 'gates'], 3],
    ['pathnet', 'pathnet-generations2-modules6', ['-p', 'generations=2,modules=6'], 4],
  ] as const) {
    const args = (dir: string) => [
      'run',
      '-e',
      'mnist2',
      '-a',
      approach,
      '-s',
      '5',
      '--hidden',
      '24',
      '--max-train',
      '300',
      '--max-test',
      '200',
      '--nepochs',
      '3',
      '--checkpoint-every',
      '0',
      '--res-dir',
      dir,
      '--progress',
      'quiet',
      ...extra,
    ];
    const run = (dir: string, fault?: string) =>
      spawnSync(path.join(root, 'bin', 'hat'), args(dir), {
        encoding: 'utf8',
        env: { ...process.env, HAT_FAULT: fault ?? '' },
        timeout: 300_000,
      });
    const whole = tmp();
    assert.equal(run(whole).status, 0);
    const dir = tmp();
    // checkpoints of the first process: after epochs 1, 2, 3 of task 1, then after task 1; killed after the 2nd (mid-task)
    // bin/hat runs node under tsx, which reports its child's SIGKILL as exit status 137 (128 + 9)
    const killed = (x: { signal: NodeJS.Signals | null; status: number | null }) =>
      x.signal === 'SIGKILL' || x.status === 137;
    let r = run(dir, 'checkpoint:2');
    assert.ok(killed(r), `${approach}: first process killed mid-task (${r.stderr})`);
    const mid = JSON.parse(fs.readFileSync(path.join(dir, `mnist2_${tag}_5.ckpt.json`), 'utf8')) as {
      tasksDone: number;
      json: { trainer?: { log: { epochs: unknown[] } } };
    };
    assert.equal(mid.tasksDone, 0);
    assert.ok(
      mid.json.trainer && mid.json.trainer.log.epochs.length === 2,
      'the checkpoint is within task 1, after 2 epochs',
    );
    // resumed: the remaining epochs of task 1, then the checkpoint between tasks; killed right after it
    r = run(dir, `checkpoint:${epochsPerTask - 1}`);
    assert.ok(killed(r), `${approach}: second process killed between tasks (${r.stderr})`);
    const between = JSON.parse(fs.readFileSync(path.join(dir, `mnist2_${tag}_5.ckpt.json`), 'utf8')) as {
      tasksDone: number;
      json: { trainer?: unknown };
    };
    assert.equal(between.tasksDone, 1);
    assert.equal(between.json.trainer, undefined, 'the checkpoint is between tasks');
    r = run(dir);
    assert.equal(r.status, 0, r.stderr);
    const a = readResult(path.join(whole, `mnist2_${tag}_5.json`));
    const b = readResult(path.join(dir, `mnist2_${tag}_5.json`));
    assert.deepEqual(b.accuracy, a.accuracy, `${approach}: resumed accuracy matrix`);
    assert.deepEqual(
      b.epochs.map((t) => t.epochs.map((e) => [e.trainLoss, e.validLoss, e.lr])),
      a.epochs.map((t) => t.epochs.map((e) => [e.trainLoss, e.validLoss, e.lr])),
      `${approach}: resumed epoch logs`,
    );
    assert.deepEqual(b.extras, a.extras, `${approach}: the callbacks' extras (gate log) continue seamlessly`);
  }
});

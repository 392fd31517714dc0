import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Hat } from '../src/approaches/hat/hat';
import { compensation } from '../src/approaches/hat/masks';
import { annealedS, epochPositions } from '../src/approaches/hat/schedule';
import { crossEntropy } from '../src/approaches/base';
import { type Batch, buildExperiment } from '../src/data/experiments';
import { Network } from '../src/nets/network';
import { alexnetConfig, mlpConfig } from '../src/nets/config';
import { createProgress } from '../src/training/progress';
import { type StepPosition } from '../src/training/types';
import { Rng } from '../src/core/rng';
import { runExperiment } from '../src/runs/run';
import { backend, learn } from './helpers';

function randomBatch(shape: number[], n: number, classes: number, task: number, seed: number): Batch {
  const rng = new Rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    x: tf.tensor(rng.normalArray(n * size), [n, ...shape]),
    y: tf.tensor1d(
      Int32Array.from({ length: n }, () => rng.int(classes)),
      'int32',
    ),
    tasks: new Int32Array(n).fill(task),
    task,
    size: n,
  };
}

const sigmoidPrime = (x: number): number => 1 / (2 * (Math.cosh(x) + 1));

test('compensation equals the spec formula (float64 reference)', async () => {
  await backend();
  const smax = 400;
  for (const s of [1 / smax, 0.7, 3, 50, smax]) {
    const es = [-6, -3.2, -1, -0.05, 0, 0.3, 1.5, 4, 6];
    const got = compensation(tf.tensor1d(es), s, smax).dataSync();
    es.forEach((e, i) => {
      const want = (smax * (Math.cosh(Math.max(-50, Math.min(50, s * e))) + 1)) / (s * (Math.cosh(e) + 1));
      assert.ok(Math.abs(got[i] - want) <= 1e-4 * Math.abs(want), `kappa(${e}, ${s}) = ${got[i]}, want ${want}`);
    });
  }
});

test("compensated embedding gradient = smax * sigmoid'(e), and 0 (not NaN) where sigmoid'(s e) underflows", async () => {
  await backend();
  const smax = 400;
  const es = Array.from({ length: 49 }, (_, i) => -6 + i * 0.25);
  for (const s of [1 / smax, 1, 10, smax]) {
    const e = tf.tensor1d(es);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.sigmoid(tf.mul(x, s))))(e);
    const compensated = tf.mul(g, compensation(e, s, smax)).dataSync();
    es.forEach((v, i) => {
      assert.ok(Number.isFinite(compensated[i]), `finite at e=${v}, s=${s}`);
      // float32 sigmoid'(x) loses relative precision as it approaches underflow, hence two tolerances
      const tolerance = Math.abs(s * v) < 8 ? 1e-3 : Math.abs(s * v) < 15 ? 5e-2 : Infinity;
      const want = smax * sigmoidPrime(v);
      assert.ok(
        Math.abs(compensated[i] - want) <= tolerance * want + 1e-6,
        `e=${v} s=${s}: ${compensated[i]} vs ${want}`,
      );
    });
  }
});

test('annealing of s (spec §2.4): paper form by batch index, code form by first sample, with a short last batch', async () => {
  const smax = 400;
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-9, `${a} vs ${b}`);
  // 130 samples in batches of 64: 3 batches starting at samples 0, 64, 128 (the last has 2 samples)
  const positions = epochPositions(130, 64);
  assert.deepEqual(
    positions.map((p) => [p.batch, p.batches, p.start]),
    [
      [0, 3, 0],
      [1, 3, 64],
      [2, 3, 128],
    ],
  );
  // paper: s_b = 1/smax + (smax - 1/smax) b/(B-1), b = 0, 1, 2 -> 1/smax, the midpoint, smax exactly
  near(annealedS('paper', smax, positions[0]), 1 / smax);
  near(annealedS('paper', smax, positions[1]), 1 / smax + (smax - 1 / smax) / 2);
  near(annealedS('paper', smax, positions[2]), smax);
  // code: by i/N = 0, 64/130, 128/130: the last batch gets a little less than smax
  near(annealedS('code', smax, positions[1]), 1 / smax + ((smax - 1 / smax) * 64) / 130);
  near(annealedS('code', smax, positions[2]), 1 / smax + ((smax - 1 / smax) * 128) / 130);
  assert.equal(annealedS('paper', smax, epochPositions(10, 64)[0]), smax, 'one batch: smax');

  // the trainer tells every step its position: a HAT learning an epoch of 130 samples sees exactly these
  await backend();
  const exp = buildExperiment('mnist2', { seed: 0, tasks: 1, maxTrain: 130, maxTest: 10 });
  const seen: StepPosition[] = [];
  class Spy extends Hat {
    protected override beforeStep(at: StepPosition): void {
      seen.push(at);
      super.beforeStep(at);
    }
  }
  const hat = new Spy(new Network(mlpConfig({ heads: [5], hat: true, hidden: [8] }), 0), { schedule: 'paper' });
  learn(hat, 0, exp.tasks, { nepochs: 1 });
  assert.deepEqual(
    seen.map((p) => [p.epoch, p.batch, p.batches, p.start, p.samples, p.lr]),
    [
      [1, 0, 3, 0, 130, 0.05],
      [1, 1, 3, 64, 130, 0.05],
      [1, 2, 3, 128, 130, 0.05],
    ],
  );
  hat.dispose();
});

test('regulariser: sum a(1-A)/sum(1-A), and sum a / sum N for the first task', async () => {
  await backend();
  const net = new Network(mlpConfig({ heads: [2, 2], hat: true, hidden: [3, 2], inputSize: 2 }), 0);
  const hat = new Hat(net, {});
  const a = [tf.tensor1d([0.5, 1, 0]), tf.tensor1d([0.25, 0.25])];
  assert.ok(Math.abs(hat.regulariser(a).dataSync()[0] - 2 / 5) < 1e-6);
  hat.setCumulative([tf.tensor1d([1, 0, 0.5]), tf.tensor1d([0, 1])]);
  // numerator 0.5*0 + 1*1 + 0*0.5 + 0.25*1 + 0.25*0 = 1.25 ; denominator 0 + 1 + 0.5 + 1 + 0 = 2.5
  assert.ok(Math.abs(hat.regulariser(a).dataSync()[0] - 0.5) < 1e-6);
  hat.setCumulative([tf.ones([3]) as tf.Tensor1D, tf.ones([2]) as tf.Tensor1D]);
  assert.equal(hat.regulariser(a).dataSync()[0], 0, 'no free capacity: 0, not NaN');
  tf.dispose(a);
  hat.dispose();
});

test("the regulariser's one-op gradient gives the bits of tfjs's chain of gradients", async () => {
  await backend();
  const net = new Network(mlpConfig({ heads: [3, 3], hat: true, hidden: [40, 24], inputSize: 5 }), 3);
  const hat = new Hat(net, { c: 0.75 });
  const rng = new Rng('regulariser-grad');
  const unit = (n: number) =>
    tf.tensor1d(Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : rng.uniformArray(1, 0, 1)[0])));
  hat.setCumulative([unit(40), unit(24)]);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const gates = [unit(40), unit(24)];
    const free = hat.cumulative!.map((a) => tf.sub(1, a));
    const chain = (...a: tf.Tensor[]) =>
      tf.div(
        tf.addN(a.map((g, l) => tf.sum(tf.mul(g, free[l])))),
        tf.maximum(tf.addN(free.map((f) => tf.sum(f))), 1e-12),
      );
    // scaled and added to, as in the objective, so that the incoming gradient is not 1
    const objective =
      (r: (...a: tf.Tensor[]) => tf.Tensor) =>
      (...a: tf.Tensor[]) =>
        tf.add(tf.mul(r(...a), 0.75), tf.sum(tf.square(a[0])));
    const want = tf.grads(objective(chain))(gates);
    const got = tf.grads(objective((...a) => hat.regulariser(a as tf.Tensor1D[])))(gates);
    const bits = (t: tf.Tensor) => Array.from(new Uint32Array(t.dataSync().slice().buffer));
    got.forEach((g, l) => assert.deepEqual(bits(g), bits(want[l]), `gate ${l}`));
    assert.deepEqual(bits(hat.regulariser(gates)), bits(chain(...gates)), 'value');
  });
  assert.equal(tf.memory().numTensors, before);
  hat.dispose();
});

test('HAT objective gradients match central finite differences', async () => {
  await backend();
  const net = new Network(mlpConfig({ heads: [3, 3], hat: true, hidden: [4, 3], inputSize: 5 }), 3);
  const hat = new Hat(net, { c: 0.75 });
  hat.setCumulative([tf.tensor1d([0.9, 0.1, 0.4, 0]), tf.tensor1d([0.2, 0.8, 0])]);
  const batch = randomBatch([5], 6, 3, 1, 11);
  const s = 2.5;
  const objective = () => {
    const { h, gates } = net.features(batch.x, { training: false, task: 1, s });
    return tf.add(crossEntropy(net.logits(h, 1), batch.y), tf.mul(hat.regulariser(gates), 0.75)) as tf.Scalar;
  };
  const vars = [
    net.layers[0].weight,
    net.layers[1].bias,
    net.layers[0].embeddings[1],
    net.layers[1].embeddings[1],
    net.heads[1].weight,
  ];
  const { grads } = tf.variableGrads(objective, vars);
  const eps = 1e-2;
  for (const v of vars) {
    const values = v.dataSync().slice();
    const g = grads[v.name].dataSync();
    for (const i of [0, Math.floor(values.length / 2), values.length - 1]) {
      const probe = (delta: number) => {
        const copy = values.slice();
        copy[i] += delta;
        v.assign(tf.tensor(copy, v.shape));
        return tf.tidy(() => objective().dataSync()[0]);
      };
      const fd = (probe(eps) - probe(-eps)) / (2 * eps);
      v.assign(tf.tensor(values, v.shape));
      assert.ok(
        Math.abs(fd - g[i]) <= 2e-3 + 2e-2 * Math.abs(fd),
        `${v.name}[${i}]: autodiff ${g[i]} vs finite difference ${fd}`,
      );
    }
  }
  tf.dispose([batch.x, batch.y, ...Object.values(grads)]);
  hat.dispose();
});

/**
 * One HAT step of task 1 with cumulative attention A, and the same step (same batch, same dropout masks)
 * without any attention: the weight gradients are identical up to the mask, so masked updates must equal
 * unmasked updates times the mask, exactly.
 */
function stepWithAttention(net: Network, A: number[][], inputShape: number[]) {
  const hat = new Hat(net, {});
  hat.beginTask(1, []);
  const start = net.snapshot();
  const step = (attention: number[][] | null) => {
    net.restore(start);
    hat.setCumulative(attention ? attention.map((a) => tf.tensor1d(a)) : null);
    net.dropout.reseed('mask-test');
    const batch = randomBatch(inputShape, 32, 3, 1, 5);
    // progress 0: s = 1/smax, every gate is about 0.5, so every free weight gets a gradient
    tf.dispose(hat.trainBatch(batch, { epoch: 1, batch: 0, batches: 1, start: 0, samples: 32, lr: 0.05 }));
    tf.dispose([batch.x, batch.y]);
    return net.variables().map((v, i) => {
      const b = start[i].dataSync();
      return Array.from(v.dataSync(), (x, k) => x - b[k]);
    });
  };
  const free = step(null);
  const masked = step(A);
  const before = start.map((t) => t.dataSync().slice());
  tf.dispose(start);
  return { hat, free, masked, before, index: (v: tf.Variable) => net.variables().indexOf(v) };
}

test('gradient masks: weights whose two units are taken do not move, free ones move as without HAT (MLP)', async () => {
  await backend();
  const net = new Network(mlpConfig({ heads: [3, 3], hat: true, hidden: [4, 3], inputSize: 5 }), 2);
  const A = [
    [1, 0, 1, 0],
    [1, 1, 0],
  ];
  const { hat, free, masked, index } = stepWithAttention(net, A, [5]);
  const expectLayer = (v: tf.Variable, mask: (k: number) => number, label: string) => {
    const i = index(v);
    let moving = 0;
    masked[i].forEach((d, k) => {
      assert.ok(
        d === mask(k) * free[i][k],
        `${label}[${k}]: masked update ${d}, unmasked ${free[i][k]}, mask ${mask(k)}`,
      );
      if (mask(k) === 1 && d !== 0) moving++;
    });
    return moving;
  };
  // first layer, weight [5, 4]: protected by its output unit only; bias by its unit
  let moving = expectLayer(net.layers[0].weight, (k) => 1 - A[0][k % 4], 'fc1.weight');
  expectLayer(net.layers[0].bias, (k) => 1 - A[0][k], 'fc1.bias');
  // second layer, weight [4, 3]: 1 - min(A_out, A_in)
  moving += expectLayer(net.layers[1].weight, (k) => 1 - Math.min(A[1][k % 3], A[0][Math.floor(k / 3)]), 'fc2.weight');
  expectLayer(net.layers[1].bias, (k) => 1 - A[1][k], 'fc2.bias');
  assert.ok(moving > 9, `free weights move: ${moving}`);
  // heads and embeddings are not masked; the other task's embedding row does not move
  assert.deepEqual(masked[index(net.layers[0].embeddings[0])], [0, 0, 0, 0]);
  assert.ok(masked[index(net.layers[0].embeddings[1])].some((d) => d !== 0));
  assert.ok(masked[index(net.heads[1].weight)].some((d) => d !== 0));
  hat.dispose();
});

test('gradient masks through the conv stack and the conv -> dense flatten (AlexNet)', async () => {
  await backend();
  const net = new Network(alexnetConfig({ heads: [3, 3], hat: true, width: 1 / 16 }), 4);
  const units = net.layers.map((l) => l.units); // 4, 8, 16, 128, 128
  const A = units.map((n, l) => Array.from({ length: n }, (_, i) => ((i + l) % 2 === 0 ? 1 : 0)));
  const { hat, free, masked, index } = stepWithAttention(net, A, [32, 32, 3]);
  const check = (v: tf.Variable, mask: (k: number) => number, label: string) => {
    const i = index(v);
    let protectedCount = 0;
    masked[i].forEach((d, k) => {
      const m = mask(k);
      if (m === 0) protectedCount++;
      assert.ok(d === m * free[i][k], `${label}[${k}]: masked ${d}, unmasked ${free[i][k]}, mask ${m}`);
    });
    return protectedCount;
  };
  // conv1 [4, 4, 3, 4]: output channel only
  check(net.layers[0].weight, (k) => 1 - A[0][k % 4], 'conv1');
  // conv2 [3, 3, 4, 8]: 1 - min(A_conv2[o], A_conv1[i]) for every kernel position
  assert.equal(
    check(net.layers[1].weight, (k) => 1 - Math.min(A[1][k % 8], A[0][Math.floor(k / 8) % 4]), 'conv2'),
    9 * 2 * 4,
  );
  // fc1 [64, 128]: input j is conv3 channel j % 16 (NHWC flatten of 2x2x16)
  assert.equal(
    check(net.layers[3].weight, (k) => 1 - Math.min(A[3][k % 128], A[2][Math.floor(k / 128) % 16]), 'fc1'),
    (64 * 128) / 4,
  );
  check(net.layers[4].weight, (k) => 1 - Math.min(A[4][k % 128], A[3][Math.floor(k / 128)]), 'fc2');
  check(net.layers[3].bias, (k) => 1 - A[3][k], 'fc1.bias');
  hat.dispose();
});

test('on real MNIST, HAT keeps task 1 after learning task 2 while SGD forgets', async () => {
  await backend();
  const resDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-forget-'));
  const common = {
    experiment: 'pmnist' as const,
    seed: 0,
    tasks: 2,
    maxTrain: 6000,
    maxTest: 3000,
    train: { nepochs: 4 },
    resDir,
    progress: createProgress('quiet'),
    resume: false,
  };
  const drops: Record<string, number> = {};
  for (const approach of ['hat', 'sgd']) {
    const { result, approach: a } = await runExperiment({ ...common, approach });
    a.dispose();
    drops[approach] = result.accuracy[0][0] - result.accuracy[1][0];
    assert.ok(result.accuracy[0][0] > 0.85, `${approach} learns task 1: ${result.accuracy[0][0]}`);
    assert.ok(result.accuracy[1][1] > 0.85, `${approach} learns task 2: ${result.accuracy[1][1]}`);
  }
  assert.ok(Math.abs(drops.hat) < 0.01, `HAT task-1 drop ${drops.hat}`);
  assert.ok(
    drops.sgd > 0.02 && drops.sgd > drops.hat + 0.015,
    `SGD should forget clearly more: ${JSON.stringify(drops)}`,
  );
  fs.rmSync(resDir, { recursive: true, force: true });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Network } from '../src/nets/network';
import { alexnetConfig, mlpConfig } from '../src/nets/config';
import { backend } from './helpers';

const MIXTURE_HEADS = [10, 100, 10, 10, 10, 43, 100, 10]; // sum 293

test("AlexNet on 32x32x3 with the mixture heads has the paper's 7.1 M parameters", async () => {
  await backend();
  const net = new Network(alexnetConfig({ heads: MIXTURE_HEADS, hat: true }), 0);
  assert.equal(net.parameterCount(), 7_104_229);
  assert.equal(
    net.embeddingVariables().reduce((n, v) => n + v.size, 0),
    8 * 4544,
  );
  assert.deepEqual(
    net.config.layers.map((l) => [l.kernel ?? 0, l.inputs, l.units]),
    [
      [4, 3, 64],
      [3, 64, 128],
      [2, 128, 256],
      [0, 1024, 2048],
      [0, 2048, 2048],
    ],
  );
  const x = tf.zeros([2, 32, 32, 3]);
  const { h, gates } = net.features(x, { training: false, task: 3, s: 400 });
  assert.deepEqual(h.shape, [2, 2048]);
  assert.deepEqual(
    gates.map((g) => g.shape[0]),
    [64, 128, 256, 2048, 2048],
  );
  assert.deepEqual(net.logits(h, 1).shape, [2, 100]);
  tf.dispose([x, h, ...gates]);
  net.dispose();
});

test('MLPs: HAT 784-2000-2000 with input dropout, baselines 784-800-800-800', async () => {
  await backend();
  const hat = mlpConfig({ heads: [10, 10], hat: true });
  const sgd = mlpConfig({ heads: [10, 10], hat: false });
  assert.deepEqual(
    hat.layers.map((l) => l.units),
    [2000, 2000],
  );
  assert.equal(hat.inputDropout, 0.2);
  assert.deepEqual(
    sgd.layers.map((l) => l.units),
    [800, 800, 800],
  );
  assert.equal(sgd.inputDropout, 0);
  const net = new Network(sgd, 0);
  assert.equal(net.parameterCount(), 784 * 800 + 800 + 2 * (800 * 800 + 800) + 2 * (800 * 10 + 10));
  net.dispose();
});

test('initialisation is PyTorch-0.2 uniform, seeded, and the same on every construction', async () => {
  await backend();
  const a = new Network(mlpConfig({ heads: [3], hat: true, hidden: [50] }), 7);
  const b = new Network(mlpConfig({ heads: [3], hat: true, hidden: [50] }), 7);
  const c = new Network(mlpConfig({ heads: [3], hat: true, hidden: [50] }), 8);
  const w = a.layers[0].weight.dataSync();
  const bound = 1 / Math.sqrt(784);
  assert.ok(Math.max(...w) <= bound && Math.min(...w) >= -bound);
  assert.ok(Math.max(...w) > 0.9 * bound, 'weights should fill the range');
  const bias = a.layers[0].bias.dataSync();
  assert.ok(Math.max(...bias) <= bound && Math.min(...bias) < 0, 'biases are uniform too (reference code)');
  assert.deepEqual(Array.from(w), Array.from(b.layers[0].weight.dataSync()));
  assert.notDeepEqual(Array.from(w.slice(0, 10)), Array.from(c.layers[0].weight.dataSync().slice(0, 10)));
  const e = Array.from(a.layers[0].embedding!.dataSync());
  const mean = e.reduce((s, v) => s + v, 0) / e.length;
  const sd = Math.sqrt(e.reduce((s, v) => s + (v - mean) ** 2, 0) / e.length);
  assert.ok(Math.abs(mean) < 0.3 && Math.abs(sd - 1) < 0.3, `embeddings ~ N(0,1): mean ${mean} sd ${sd}`);
  [a, b, c].forEach((n) => n.dispose());
});

test('gates multiply units: a closed gate zeroes its unit, dropout only in training', async () => {
  await backend();
  const net = new Network(mlpConfig({ heads: [2], hat: true, hidden: [6], inputSize: 4 }), 1);
  const e = net.layers[0].embedding!;
  e.assign(tf.tensor2d([[6, -6, 6, -6, 6, -6]]));
  const x = tf.ones([3, 4]);
  const { h } = net.features(x, { training: false, task: 0, s: 400 });
  const plain = tf.relu(tf.add(tf.matMul(x, net.layers[0].weight as tf.Tensor2D), net.layers[0].bias));
  const got = h.arraySync();
  const want = plain.arraySync() as number[][];
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 6; j++) assert.ok(Math.abs(got[i][j] - (j % 2 === 0 ? want[i][j] : 0)) < 1e-5);
  const again = net.features(x, { training: false, task: 0, s: 400 }).h;
  assert.deepEqual(again.arraySync(), got, 'eval mode is deterministic');
  const train = net.features(tf.ones([64, 4]), { training: true, task: 0, s: 400 }).h.dataSync();
  const zeros = train.filter((v) => v === 0).length;
  assert.ok(zeros > 64 * 3, 'closed gates and dropout zero units in training');
  tf.dispose([x, h, plain, again]);
  net.dispose();
});

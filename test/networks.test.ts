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
  const e = a.layers[0].embeddings.flatMap((row) => Array.from(row.dataSync()));
  const mean = e.reduce((s, v) => s + v, 0) / e.length;
  const sd = Math.sqrt(e.reduce((s, v) => s + (v - mean) ** 2, 0) / e.length);
  assert.ok(Math.abs(mean) < 0.3 && Math.abs(sd - 1) < 0.3, `embeddings ~ N(0,1): mean ${mean} sd ${sd}`);
  [a, b, c].forEach((n) => n.dispose());
});

test('gates multiply units: a closed gate zeroes its unit, dropout only in training', async () => {
  await backend();
  const net = new Network(mlpConfig({ heads: [2], hat: true, hidden: [6], inputSize: 4 }), 1);
  net.layers[0].embeddings[0].assign(tf.tensor1d([6, -6, 6, -6, 6, -6]));
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

test('the fused hidden layer (op, ReLU, dropout, pool, gate) has the gradients of the same layer composed of tfjs ops', async () => {
  await backend();
  const { Dropout, hiddenLayer } = await import('../src/nets/ops');
  const { Rng } = await import('../src/core/rng');
  const rng = new Rng('fused-layer');
  const cases = [
    {
      spec: { name: 'c', kind: 'conv' as const, inputs: 3, units: 5, kernel: 3, dropout: 0.3, pool: true },
      x: [4, 9, 9, 3],
      w: [3, 3, 3, 5],
    },
    {
      spec: { name: 'd', kind: 'dense' as const, inputs: 20, units: 7, dropout: 0.5, pool: false },
      x: [6, 20],
      w: [20, 7],
    },
    {
      spec: { name: 'f', kind: 'dense' as const, inputs: 48, units: 6, dropout: 0, pool: false },
      x: [3, 2, 2, 12],
      w: [48, 6],
    },
  ];
  for (const { spec, x: xs, w: ws } of cases) {
    for (const gated of [false, true]) {
      const t = (shape: number[]) => tf.tensor(rng.normalArray(shape.reduce((a, b) => a * b, 1)), shape);
      const [x, w, b] = [t(xs), t(ws), t([spec.units])];
      const gate = gated ? (tf.sigmoid(t([spec.units])) as tf.Tensor1D) : undefined;
      const inputs = gated ? [x, w, b, gate!] : [x, w, b];
      const out = hiddenLayer(spec, x, w, b, true, new Dropout('k'), { gate });
      const weights = t(out.shape); // a random upstream gradient
      const fused = tf.grads((...a: tf.Tensor[]) =>
        tf.sum(
          tf.mul(
            hiddenLayer(spec, a[0], a[1], a[2], true, new Dropout('k'), { gate: a[3] as tf.Tensor1D | undefined }),
            weights,
          ),
        ),
      )(inputs);
      // the same layer from plain tfjs ops, with the mask the same stream draws
      const composed = tf.grads((...a: tf.Tensor[]) => {
        const flat = spec.kind === 'dense' && a[0].rank > 2 ? tf.reshape(a[0], [a[0].shape[0], -1]) : a[0];
        const z =
          spec.kind === 'conv'
            ? tf.conv2d(flat as tf.Tensor4D, a[1] as tf.Tensor4D, 1, 'valid')
            : tf.matMul(flat as tf.Tensor2D, a[1] as tf.Tensor2D);
        const r = tf.relu(tf.add(z, a[2]));
        const d = spec.dropout > 0 ? tf.mul(r, new Dropout('k').mask(r.shape, spec.dropout)) : r;
        const p = spec.pool ? tf.maxPool(d as tf.Tensor4D, 2, 2, 'valid') : d;
        return tf.sum(tf.mul(gated ? tf.mul(p, a[3]) : p, weights));
      })(inputs);
      fused.forEach((g, i) => {
        const diff = tf.max(tf.abs(tf.sub(g, composed[i]))).dataSync()[0];
        const scale = tf.max(tf.abs(composed[i])).dataSync()[0];
        assert.ok(diff <= 1e-5 * Math.max(1, scale), `${spec.name} gated=${gated} input ${i}: max difference ${diff}`);
      });
      // raw-data inputs get no gradient
      const noInput = tf.grads((...a: tf.Tensor[]) =>
        tf.sum(tf.mul(hiddenLayer(spec, a[0], a[1], a[2], true, new Dropout('k'), { inputGrad: false }), weights)),
      )([x, w, b]);
      assert.equal(tf.max(tf.abs(noInput[0])).dataSync()[0], 0);
      tf.dispose([x, w, b, out, weights, ...fused, ...composed, ...noInput, ...(gate ? [gate] : [])]);
    }
  }
});

test('for one seed HAT and the baselines start from the same trunk and heads: the embeddings draw from their own stream (spec §4.5)', async () => {
  await backend();
  const gated = new Network(alexnetConfig({ heads: [10, 10], hat: true }), 7);
  const plain = new Network(alexnetConfig({ heads: [10, 10], hat: false }), 7);
  const weights = (n: Network) => [...n.trunkVariables(), ...n.headVariables()].map((v) => Array.from(v.dataSync()));
  assert.deepEqual(weights(gated), weights(plain));
  gated.dispose();
  plain.dispose();
});

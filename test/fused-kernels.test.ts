/**
 * The fused kernels (src/backend/fused-kernels.c) against the chains of TensorFlow ops they replace: the same
 * bits, not just close values, on values that probe the edges (zeros of both signs, ReLU's boundary, noise
 * equal to the dropout rate, gates of 0 and 1); a fused hidden layer's outputs and gradients and several HAT
 * and SGD training steps bit for bit with the kernels on and off; tensor counts flat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { backend, learn } from './helpers';
import {
  fusedBiasReluDropout,
  fusedBiasReluDropoutPool,
  fusedCompensate,
  fusedDropout,
  fusedDropoutReluGrad,
  fusedGateDropoutReluGrad,
  fusedGatePoolDropoutReluGrad,
  fusedKernelsStatus,
  fusedMaskedSgdUpdate,
  fusedPoolDropoutReluGrad,
  fusedSigmoidScaleGrad,
  fusedSgdUpdate,
  fusedStatelessUniform,
  setFusedKernelsEnabled,
  setFusedSumsEnabled,
} from '../src/backend/fused-kernels';
import { nativeBackend, reluGrad, statelessUniform } from '../src/backend/native-ops';
import { sgdUpdate } from '../src/approaches/base';
import { Rng } from '../src/core/rng';
import { compensation } from '../src/approaches/hat/masks';

/** Whether two tensors hold the same float32 bits (so -0 differs from 0, and NaN equals NaN). */
function sameBits(a: tf.Tensor, b: tf.Tensor, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  const [x, y] = [new Uint32Array(a.dataSync().slice().buffer), new Uint32Array(b.dataSync().slice().buffer)];
  const i = x.findIndex((v, k) => v !== y[k]);
  assert.equal(i, -1, `${what}: element ${i} differs (${a.dataSync()[i]} vs ${b.dataSync()[i]})`);
}

/** The updates' Σg² against a float64 sum in JavaScript (it is for bounds: close, not TensorFlow's bits). */
function closeSumOfSquares(sum: tf.Scalar, g: tf.Tensor, what: string): void {
  let want = 0;
  for (const v of g.dataSync()) want += v * v;
  const got = sum.dataSync()[0];
  assert.ok(Math.abs(got - want) <= 1e-6 * want, `${what}: sum of squares ${got} vs ${want}`);
}

/** Values with the edge cases mixed in: ±0, ±tiny, the dropout rate itself, 1. */
function edgy(rng: Rng, shape: number[], edges: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = rng.normalArray(n).map((x, i) => (i % 5 === 0 ? edges[(i / 5) % edges.length] : x));
  return tf.tensor(v, shape);
}

async function nativeWithKernels(t: { skip: (m: string) => void }): Promise<boolean> {
  const info = await backend();
  if (info.name !== 'tensorflow' || info.device !== 'cpu')
    return (t.skip(`native CPU backend not active (${info.name})`), false);
  const s = fusedKernelsStatus();
  // in CI the setup builds the addon: its absence there is a failure, not a skip
  if (!s.active && process.env.CI) assert.fail(`fused kernels not active: ${s.reason}`);
  if (!s.active) return (t.skip(`fused kernels not active: ${s.reason}`), false);
  // the kernels' sums over rows match TensorFlow's order on this machine's build (else they would not run)
  if (process.env.CI) assert.ok((s.sumPacket ?? 0) > 0, 'the fused kernels return no sums: their order matched none');
  return true;
}

test('each fused kernel gives the bits of the TensorFlow ops it replaces', async (t) => {
  if (!(await nativeWithKernels(t))) return;
  const rng = new Rng('fused-kernels');
  const rate = 0.3;
  const keep = 1 / (1 - rate);
  const before = tf.memory().numTensors;
  // TensorFlow's stateless uniform noise, drawn by the kernels' own Philox: sizes around its blocks of 4 and its
  // stretches of 4096, seeds of both signs and the int32 extremes
  for (const n of [1, 3, 4, 5, 63, 64, 65, 4095, 4097, 12290])
    for (const seed of [
      [0, 0],
      [1, 2],
      [-1, 7],
      [2147483647, -2147483648],
      [rng.int32(), rng.int32()],
    ] as [number, number][])
      tf.tidy(() => {
        const like = tf.zeros([n]);
        sameBits(fusedStatelessUniform(like, seed)!, statelessUniform([n], seed)!, `noise of ${n} for ${seed}`);
      });
  let k = 0;
  for (const shape of [
    [6, 7],
    [2, 5, 3, 4],
    [1, 1],
    [700, 7], // stretches of noise that do not start on a block of 4
    [3, 5001], // a row longer than a stretch
    [64, 800],
    [37, 21], // sums over rows: four accumulators, a row left over, columns beyond the last whole packet
    [16, 8],
  ]) {
    tf.tidy(() => {
      const c = shape[shape.length - 1];
      const z = edgy(rng, shape, [0, -0, 1e-30, -1e-30, 1]);
      // not -0: relu(-0 + -0) is +0 or -0 by where Eigen's vector path ends (fused-kernels.c); biases are never -0
      const bias = edgy(rng, [c], [0]);
      const seed: [number, number] = [rng.int32(), k++];
      const noise = statelessUniform(shape, seed)!;
      const gate = edgy(rng, [c], [0, 1, -0]);
      const dy = edgy(rng, shape, [0, -0]);
      const plainMask = tf.mul(tf.cast(tf.greaterEqual(noise, rate), 'float32'), keep);
      const r = tf.relu(tf.add(z, bias));
      const d = tf.mul(r, plainMask);

      const [rf, mf, df] = fusedBiasReluDropout(z, bias, seed, rate)!;
      sameBits(rf, r, `${shape} relu(z + b)`);
      sameBits(mf, plainMask, `${shape} mask`);
      sameBits(df, d, `${shape} r * mask`);
      const gated = fusedBiasReluDropout(z, bias, seed, rate, gate)!;
      sameBits(gated[3], tf.mul(d, gate), `${shape} d * gate`);

      const [yf, mf2] = fusedDropout(z, seed, rate)!;
      sameBits(yf, tf.mul(z, plainMask), `${shape} dropout`);
      sameBits(mf2, plainMask, `${shape} dropout mask`);

      // the gradients, and the bias's and gate's (sums over rows, in TensorFlow's order), also as on a build
      // whose order the kernels do not match (no sums from them; TensorFlow's Sum)
      const rows = [...Array(shape.length - 1).keys()];
      const [dzPlain, dzGatedPlain] = [
        reluGrad(tf.mul(dy, plainMask), r),
        reluGrad(tf.mul(tf.mul(dy, gate), plainMask), r),
      ];
      for (const sums of [true, false]) {
        setFusedSumsEnabled(sums);
        try {
          const [dz, db] = fusedDropoutReluGrad(dy, plainMask, r)!;
          sameBits(dz, dzPlain, `${shape} relu grad`);
          sameBits(db, tf.sum(dzPlain, rows), `${shape} bias grad (sums ${sums})`);
          const [dzGated, dbGated, dGate] = fusedGateDropoutReluGrad(dy, d, gate, plainMask, r)!;
          sameBits(dzGated, dzGatedPlain, `${shape} gated relu grad`);
          sameBits(dbGated, tf.sum(dzGatedPlain, rows), `${shape} gated bias grad (sums ${sums})`);
          sameBits(dGate, tf.sum(tf.mul(dy, d), rows), `${shape} gate grad (sums ${sums})`);
        } finally {
          setFusedSumsEnabled(true);
        }
      }

      const step = tf.scalar(0.0371);
      const [updated, sum] = fusedSgdUpdate(z, dy, step)!;
      sameBits(updated, tf.sub(z, tf.mul(dy, step)), `${shape} update`);
      closeSumOfSquares(sum, dy, `${shape} update`);
    });
  }
  // HAT's gate gradient and embedding compensation, over embeddings that reach cosh's clip at large s and
  // gates that saturate to 0 and 1
  for (const s of [1, 37.5, 400])
    tf.tidy(() => {
      const e = tf.concat([edgy(rng, [300], [0, -0, 6, -6, 1e-30]), tf.tensor1d([0.2, -0.2, 50 / s, -50 / s])]);
      const g = edgy(rng, e.shape, [0, -0, 1]);
      const y = tf.sigmoid(tf.mul(e, s));
      sameBits(
        fusedSigmoidScaleGrad(g, y, s)!,
        tf.mul(tf.mul(g, tf.mul(y, tf.sub(1, y))), s),
        `sigmoid(e * ${s}) gradient`,
      );
      sameBits(fusedCompensate(g, e, s, 400 / s, 50)!, tf.mul(g, compensation(e, s, 400)), `compensation at s ${s}`);
    });
  // a weight matrix large enough to be split over threads
  tf.tidy(() => {
    const w = tf.randomNormal([1200, 1000], 0, 1, 'float32', 1);
    const g = tf.randomNormal([1200, 1000], 0, 1, 'float32', 2);
    const step = tf.scalar(0.0123);
    const [updated, sum] = fusedSgdUpdate(w, g, step)!;
    sameBits(updated, tf.sub(w, tf.mul(g, step)), 'split update');
    closeSumOfSquares(sum, g, 'split update');
  });
  // the masked update, its mask broadcast as HAT's are (same shape, per unit, a conv layer's [1, 1, in, out]),
  // small and split over threads
  for (const [shape, maskShape] of [
    [
      [6, 7],
      [6, 7],
    ],
    [
      [6, 7],
      [1, 7],
    ],
    [[7], [7]],
    [
      [3, 3, 4, 5],
      [1, 1, 4, 5],
    ],
    [
      [1100, 1000],
      [1, 1000],
    ],
    [
      [3, 3, 300, 400],
      [1, 1, 300, 400],
    ],
  ])
    tf.tidy(() => {
      const [w, g] = [edgy(rng, shape, [0, -0, 1]), edgy(rng, shape, [0, -0, 1e-30])];
      const mask = tf.abs(edgy(rng, maskShape, [0, 1, 0.5]));
      const step = tf.scalar(0.0371);
      const plain = tf.sub(w, tf.mul(tf.mul(g, mask), step));
      const [updated, sum] = fusedMaskedSgdUpdate(w, g, mask, step)!;
      sameBits(updated, plain, `${shape} masked update by ${maskShape}`);
      closeSumOfSquares(sum, g, `${shape} masked update`);
    });
  assert.equal(tf.memory().numTensors, before);
});

test('the pooled-layer kernels give the bits of ReLU, dropout, MaxPool, MaxPoolGrad and the gate, ties included', async (t) => {
  if (!(await nativeWithKernels(t))) return;
  const rng = new Rng('fused-pool');
  const rate = 0.25;
  const keep = 1 / (1 - rate);
  const before = tf.memory().numTensors;
  // odd and even sizes (an odd last row and column is in no window), and a map large enough to be split over
  // threads; values on a coarse grid, so that windows often hold equal maxima (the gradient goes to the first)
  for (const shape of [
    [2, 5, 5, 3],
    [3, 6, 4, 2],
    [1, 2, 3, 17],
    [20, 29, 29, 64],
    [60, 29, 29, 21], // threads split by blocks of 16 channels: a last block of 5, beyond the last whole packet
  ])
    tf.tidy(() => {
      const n = shape.reduce((a, b) => a * b, 1);
      const c = shape[3];
      const z = tf.tensor(
        rng.normalArray(n).map((v) => Math.round(v * 2) / 2),
        shape,
      );
      const bias = tf.tensor(rng.normalArray(c).map((v, i) => (i % 2 ? 0 : Math.round(v * 2) / 2)));
      const gate = edgy(rng, [c], [0, 1]);
      const seed: [number, number] = [rng.int32(), rng.int32()];
      const mask = tf.mul(tf.cast(tf.greaterEqual(statelessUniform(shape, seed)!, rate), 'float32'), keep);
      const r = tf.relu(tf.add(z, bias));
      const d = tf.mul(r, mask);
      const p = tf.maxPool(d as tf.Tensor4D, 2, 2, 'valid');
      const dy = edgy(rng, p.shape, [0, -0]);
      const viaPool = (g: tf.Tensor) =>
        reluGrad(
          tf.mul(
            tf
              .engine()
              .runKernel(
                'MaxPoolGrad',
                { dy: g, input: d, output: p },
                { filterSize: 2, strides: 2, pad: 'valid' },
              ) as tf.Tensor,
            mask,
          ),
          r,
        );
      const [height, width] = shape.slice(1, 3);

      const [pf, route] = fusedBiasReluDropoutPool(z, bias, seed, rate)!;
      sameBits(pf, p, `${shape} pooled`);
      const rows = [0, 1, 2];
      const [pg, routeG, y] = fusedBiasReluDropoutPool(z, bias, seed, rate, gate)!;
      sameBits(pg, p, `${shape} gated: pooled`);
      sameBits(routeG, route, `${shape} gated: route`);
      sameBits(y, tf.mul(p, gate), `${shape} gated: p * gate`);
      const [want, wantGated] = [viaPool(dy), viaPool(tf.mul(dy, gate))];
      for (const sums of [true, false]) {
        setFusedSumsEnabled(sums);
        try {
          const [dz, db] = fusedPoolDropoutReluGrad(dy, route, rate, [height, width])!;
          sameBits(dz, want, `${shape} pooled gradient`);
          sameBits(db, tf.sum(want, rows), `${shape} pooled bias gradient (sums ${sums})`);
          const [dzG, dbG, dGate] = fusedGatePoolDropoutReluGrad(dy, p, gate, route, rate, [height, width])!;
          sameBits(dzG, wantGated, `${shape} gated: gradient`);
          sameBits(dbG, tf.sum(wantGated, rows), `${shape} gated: bias gradient (sums ${sums})`);
          sameBits(dGate, tf.sum(tf.mul(dy, p), rows), `${shape} gated: gate gradient (sums ${sums})`);
        } finally {
          setFusedSumsEnabled(true);
        }
      }
    });
  assert.equal(tf.memory().numTensors, before);
});

test("the update's one-pass path (clip factor known to be 1) and the clip chain give the same bits", async (t) => {
  if (!(await nativeWithKernels(t))) return;
  const rng = new Rng('fused-update');
  const t4 = (shape: number[], scale = 1) =>
    tf.mul(tf.tensor(rng.normalArray(shape.reduce((a, b) => a * b, 1)), shape), scale);
  const shapes = [[30, 20], [1, 20], [20], [3, 3, 2, 20]];
  const grads = shapes.map((s) => t4(s));
  const inits = shapes.map((s) => t4(s));
  const [mask0, mask3] = [tf.abs(tf.tanh(t4([1, 20]))), tf.abs(tf.tanh(t4([1, 1, 2, 20])))];
  const norm = Math.sqrt(grads.reduce((a, g) => a + tf.sum(tf.square(g)).dataSync()[0], 0));
  let run = 0;
  // far above the norm (one pass), just above it (the chain, factor 1), below the masked norm (clipped)
  for (const clipNorm of [1e4, norm * 1.2, norm * 0.3]) {
    const update = (on: boolean) => {
      setFusedKernelsEnabled(on);
      try {
        const vars = inits.map((v, i) => tf.variable(v, true, `update-${run}-v${i}`));
        const masks = { [vars[0].name]: mask0, [vars[3].name]: mask3 };
        run++;
        // which ops ran: TensorFlow's clip chain shows as L2Loss
        const b = nativeBackend()!;
        const execute = b.executeSingleOutput.bind(b);
        b.executeSingleOutput = (name, attrs, inputs) => (ops.add(name), execute(name, attrs, inputs));
        try {
          tf.tidy(() => sgdUpdate(vars, grads, masks, clipNorm, 0.05));
        } finally {
          delete (b as Partial<typeof b>).executeSingleOutput; // back to the prototype's
        }
        return vars;
      } finally {
        setFusedKernelsEnabled(true);
      }
    };
    const before = tf.memory().numTensors;
    const ops = new Set<string>();
    const fused = update(true);
    assert.equal(ops.has('L2Loss'), clipNorm <= 2 * norm, `clip ${clipNorm}: path taken`);
    const plain = update(false);
    fused.forEach((v, i) => sameBits(v, plain[i], `clip ${clipNorm.toFixed(2)}: variable ${i}`));
    tf.dispose([...fused, ...plain]);
    assert.equal(tf.memory().numTensors, before);
  }
  tf.dispose([...grads, ...inits, mask0, mask3]);
});

test('a fused kernel given a bad operand stops with an error naming it, not a crash', async (t) => {
  if (!(await nativeWithKernels(t))) return;
  tf.tidy(() => {
    assert.throws(() => fusedSgdUpdate(tf.zeros([3]), tf.zeros([4]), tf.scalar(1)), /differ in size/);
    const x = tf.zeros([2, 3]);
    assert.throws(() => fusedGateDropoutReluGrad(x, x, tf.zeros([2]), x, x), /last axis/);
  });
});

test('hidden layers and training steps are bit for bit the same with the fused kernels on and off', async (t) => {
  if (!(await nativeWithKernels(t))) return;
  const { Dropout, hiddenLayer } = await import('../src/nets/ops');
  const rng = new Rng('fused-layers');
  const specs = [
    {
      name: 'c',
      kind: 'conv' as const,
      inputs: 3,
      units: 5,
      kernel: 3,
      dropout: 0.3,
      pool: true,
      x: [4, 9, 9, 3],
      w: [3, 3, 3, 5],
    },
    { name: 'd', kind: 'dense' as const, inputs: 20, units: 7, dropout: 0.5, pool: false, x: [6, 20], w: [20, 7] },
  ];
  for (const { x: xs, w: ws, ...spec } of specs)
    for (const gated of [false, true]) {
      const t4 = (shape: number[]) => tf.tensor(rng.normalArray(shape.reduce((a, b) => a * b, 1)), shape);
      const [x, w, b] = [t4(xs), t4(ws), t4([spec.units])];
      const gate = gated ? (tf.sigmoid(t4([spec.units])) as tf.Tensor1D) : undefined;
      const up = t4(hiddenLayer(spec, x, w, b, false, new Dropout('k'), { gate }).shape);
      const run = (on: boolean) => {
        setFusedKernelsEnabled(on);
        try {
          return tf.grads((...a: tf.Tensor[]) => {
            const drop = new Dropout('k');
            const h = drop.apply(a[0], 0.2, true); // the input dropout (MLP) too
            return tf.sum(tf.mul(hiddenLayer(spec, h, a[1], a[2], true, drop, { gate: a[3] as tf.Tensor1D }), up));
          })(gate ? [x, w, b, gate] : [x, w, b]);
        } finally {
          setFusedKernelsEnabled(true);
        }
      };
      const [fused, plain] = [run(true), run(false)];
      fused.forEach((g, i) => sameBits(g, plain[i], `${spec.name} gated=${gated} gradient ${i}`));
      tf.dispose([x, w, b, up, ...fused, ...plain, ...(gate ? [gate] : [])]);
    }
});

test('training is bit for bit the same with the fused kernels on and off: HAT, SGD and EWC', async (t) => {
  if (!(await nativeWithKernels(t))) return;
  const { createApproach } = await import('../src/approaches/index');
  const { isLearner } = await import('../src/training/types');
  const { buildExperiment } = await import('../src/data/experiments');
  const exp = buildExperiment('mnist2', { seed: 0, tasks: 2, maxTrain: 130, maxTest: 10 });
  // the MNIST setups are MLPs; the AlexNet's layers (conv, pool, gate) are compared in the test above
  const kind = 'mlp';
  for (const id of ['hat', 'sgd', 'ewc']) {
    const train = (on: boolean): tf.Tensor[] => {
      setFusedKernelsEnabled(on);
      try {
        const a = createApproach(id, {
          kind,
          inputShape: exp.inputShape,
          heads: exp.tasks.map((k) => k.classes),
          network: { hidden: [48, 48] },
          seed: 0,
        });
        assert.ok(isLearner(a));
        const before = tf.memory().numTensors;
        learn(a, 0, exp.tasks, { nepochs: 1 });
        const afterFirst = tf.memory().numTensors;
        learn(a, 1, exp.tasks, { nepochs: 2 });
        // task 1 adds its own state (HAT's embedding row, EWC's anchors) once; epochs add nothing
        assert.ok(tf.memory().numTensors - afterFirst <= afterFirst - before + 8, `${id} ${kind}: tensors grow`);
        const weights = a.snapshot();
        a.dispose();
        return weights;
      } finally {
        setFusedKernelsEnabled(true);
      }
    };
    const [fused, plain] = [train(true), train(false)];
    assert.equal(fused.length, plain.length);
    fused.forEach((w, i) => sameBits(w, plain[i], `${id} ${kind}: variable ${i}`));
    tf.dispose([...fused, ...plain]);
  }
});

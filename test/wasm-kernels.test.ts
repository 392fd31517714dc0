/**
 * The wasm training kernels of src/wasm-kernels.ts, checked against the pure-JS cpu backend in the same
 * process: each registered kernel on its own, the full gradients of a small conv net and of matMul with
 * every transpose combination, a HAT-style objective, memory (no tensor or buffer leaks) and idempotence.
 * Inputs come from a deterministic formula (no tf.random), so both backends see identical values.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import {
  WASM_TRAINING_KERNELS,
  installWasmTrainingKernels,
  isWasmTrainingKernel,
  uninstallWasmTrainingKernels,
} from '../src/backend/wasm-kernels';

/** Deterministic values in [-1, 1) (a small LCG), different for each `seed`. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const rnd = (shape: number[], seed: number) => tf.tensor(values(sizeOf(shape), seed), shape);

interface Result {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Runs `fn` on wasm then on cpu (fresh tensors each time) and returns both results. */
async function onBoth(fn: () => tf.Tensor | tf.Tensor[]): Promise<{ wasm: Result[]; cpu: Result[] }> {
  const run = async (backend: string): Promise<Result[]> => {
    assert.ok(await tf.setBackend(backend));
    const outs = tf.tidy(fn);
    const list = Array.isArray(outs) ? outs : [outs];
    const res = list.map((t) => ({ shape: t.shape.slice(), data: t.dataSync() as Float32Array | Int32Array }));
    tf.dispose(list);
    return res;
  };
  try {
    return { wasm: await run('wasm'), cpu: await run('cpu') };
  } finally {
    await tf.setBackend('wasm');
  }
}

/** max |a - b| <= rtol * max |b| (and equal shapes). */
function assertClose(actual: Result[], expected: Result[], rtol = 1e-4, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: number of outputs`);
  actual.forEach((a, k) => {
    const e = expected[k];
    assert.deepEqual(a.shape, e.shape, `${what}[${k}]: shape`);
    let scale = 0;
    let diff = 0;
    let worst = -1;
    for (let i = 0; i < e.data.length; i++) {
      scale = Math.max(scale, Math.abs(e.data[i]));
      const d = Math.abs(a.data[i] - e.data[i]);
      if (!(d <= diff)) {
        diff = d;
        worst = i;
      } // NaN counts as worst
    }
    assert.ok(scale > 0, `${what}[${k}]: reference is all zeros, the check would be vacuous`);
    assert.ok(
      diff <= rtol * scale,
      `${what}[${k}]: max diff ${diff} at ${worst} (wasm ${a.data[worst]}, cpu ${e.data[worst]}) > ${rtol} * ${scale}`,
    );
  });
}

async function compare(what: string, fn: () => tf.Tensor | tf.Tensor[], rtol = 1e-4): Promise<void> {
  const { wasm: w, cpu: c } = await onBoth(fn);
  assertClose(w, c, rtol, what);
}

/** Tensors the engine tracks and buffers the wasm backend holds (kernel intermediates bypass the engine). */
function memory(): { tensors: number; buffers: number } {
  return {
    tensors: tf.memory().numTensors,
    buffers: (tf.findBackend('wasm') as unknown as { numDataIds(): number }).numDataIds(),
  };
}

before(async () => {
  wasm.setWasmPaths(
    path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep,
  );
  assert.ok(await tf.setBackend('wasm'));
  await tf.ready();
  installWasmTrainingKernels();
});

after(async () => {
  await tf.setBackend('wasm');
});

describe('installation', () => {
  test('kernels missing from stock wasm are the ones installed', () => {
    uninstallWasmTrainingKernels();
    try {
      const stock = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
      assert.ok(
        !stock.has('Conv2DBackpropFilter'),
        'stock wasm now has Conv2DBackpropFilter: review src/wasm-kernels.ts',
      );
      assert.ok(!stock.has('UnsortedSegmentSum'), 'stock wasm now has UnsortedSegmentSum: review src/wasm-kernels.ts');
    } finally {
      installWasmTrainingKernels();
    }
    for (const name of WASM_TRAINING_KERNELS) assert.ok(isWasmTrainingKernel(name), `${name} is not installed`);
  });

  test('installing twice is harmless; uninstall restores the stock kernels', async () => {
    const before = WASM_TRAINING_KERNELS.map((n) => tf.getKernel(n, 'wasm').kernelFunc);
    installWasmTrainingKernels();
    installWasmTrainingKernels();
    assert.deepEqual(
      WASM_TRAINING_KERNELS.map((n) => tf.getKernel(n, 'wasm').kernelFunc),
      before,
      'second install re-registered kernels',
    );
    uninstallWasmTrainingKernels();
    try {
      assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined);
      assert.ok(tf.getKernel('BatchMatMul', 'wasm') && !isWasmTrainingKernel('BatchMatMul'));
      uninstallWasmTrainingKernels(); // twice is harmless too
      assert.ok(tf.getKernel('BatchMatMul', 'wasm'));
    } finally {
      installWasmTrainingKernels();
    }
    // a single wrapper, not a wrapper of a wrapper: results still right after all that
    await compare('matMul after reinstall', () => tf.matMul(rnd([5, 7], 1), rnd([6, 7], 2), false, true));
  });
});

describe('Conv2DBackpropFilter', () => {
  const cases: {
    x: number[];
    k: number[];
    strides: number | [number, number];
    pad: 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];
  }[] = [
    { x: [3, 9, 9, 2], k: [3, 3, 2, 4], strides: 1, pad: 'valid' },
    { x: [4, 10, 8, 3], k: [4, 4, 3, 5], strides: 1, pad: 'valid' },
    { x: [2, 7, 9, 3], k: [2, 3, 3, 2], strides: 1, pad: 'valid' },
    { x: [2, 8, 8, 3], k: [3, 3, 3, 4], strides: 1, pad: 'same' },
    { x: [2, 8, 7, 2], k: [4, 4, 2, 3], strides: 1, pad: 'same' },
    {
      x: [2, 8, 7, 2],
      k: [3, 3, 2, 3],
      strides: 1,
      pad: [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    },
    { x: [2, 9, 9, 2], k: [3, 3, 2, 3], strides: 2, pad: 'valid' },
    { x: [2, 10, 8, 2], k: [3, 3, 2, 3], strides: [2, 3], pad: 'valid' },
    { x: [2, 10, 9, 2], k: [3, 3, 2, 3], strides: 2, pad: 'same' },
  ];
  for (const c of cases) {
    test(`x ${c.x} filter ${c.k} strides ${c.strides} pad ${JSON.stringify(c.pad)}`, async () => {
      await compare('dW', () => {
        const x = rnd(c.x, 11) as tf.Tensor4D;
        const w = rnd(c.k, 12) as tf.Tensor4D;
        const y = tf.conv2d(x, w, c.strides, c.pad);
        const dy = rnd(y.shape, 13);
        return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
          strides: c.strides,
          pad: c.pad,
          dataFormat: 'NHWC',
          dimRoundingMode: undefined,
          filterShape: c.k,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
      });
    });
  }

  test('project-sized layer (AlexNet conv2, batch 8)', async () => {
    await compare('dW', () =>
      tf.grad((w: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.conv2d(rnd([8, 14, 14, 16], 21) as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'),
            rnd([8, 12, 12, 32], 22),
          ),
        ),
      )(rnd([3, 3, 16, 32], 23)),
    );
  });

  test('unsupported layouts fail with a clear error', () => {
    const x = rnd([1, 5, 5, 2], 1);
    const dy = rnd([1, 3, 3, 2], 2);
    assert.throws(
      () =>
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x, dy },
            { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 2, 2] },
          ),
      /only NHWC is supported/,
    );
    tf.dispose([x, dy]);
  });
});

describe('Conv2DBackpropInput', () => {
  const cases: {
    x: number[];
    k: number[];
    strides: number;
    pad: 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];
  }[] = [
    { x: [3, 9, 9, 2], k: [3, 3, 2, 4], strides: 1, pad: 'valid' },
    { x: [4, 10, 8, 3], k: [4, 4, 3, 5], strides: 1, pad: 'valid' },
    { x: [2, 7, 9, 3], k: [2, 3, 3, 2], strides: 1, pad: 'valid' },
    { x: [2, 8, 7, 2], k: [4, 4, 2, 3], strides: 1, pad: 'same' },
    {
      x: [2, 8, 7, 2],
      k: [3, 3, 2, 3],
      strides: 1,
      pad: [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    },
    { x: [2, 9, 8, 2], k: [3, 3, 2, 3], strides: 2, pad: 'same' }, // handled by the original kernel
  ];
  for (const c of cases) {
    test(`x ${c.x} filter ${c.k} strides ${c.strides} pad ${JSON.stringify(c.pad)}`, async () => {
      await compare('dx', () => {
        const w = rnd(c.k, 31) as tf.Tensor4D;
        const outShape = tf.conv2d(tf.zeros<tf.Rank>(c.x) as tf.Tensor4D, w, c.strides, c.pad).shape as number[];
        return tf.engine().runKernel('Conv2DBackpropInput', { dy: rnd(outShape, 32), filter: w }, {
          strides: c.strides,
          pad: c.pad,
          dataFormat: 'NHWC',
          dimRoundingMode: undefined,
          inputShape: c.x,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
      });
    });
  }
});

/** Stock wasm kernel, but on the training path of every conv net here: ties and odd sizes included. */
describe('MaxPoolGrad', () => {
  const cases: { x: number[]; size: number; strides: number; pad: 'valid' | 'same' }[] = [
    { x: [3, 8, 8, 4], size: 2, strides: 2, pad: 'valid' },
    { x: [2, 9, 7, 3], size: 2, strides: 2, pad: 'valid' }, // odd sides: last row/column unused
    { x: [2, 7, 7, 3], size: 3, strides: 1, pad: 'valid' }, // overlapping windows add up
    { x: [2, 9, 8, 3], size: 3, strides: 2, pad: 'same' },
  ];
  for (const c of cases) {
    for (const ties of [false, true]) {
      test(`x ${c.x} pool ${c.size} strides ${c.strides} pad ${c.pad}${ties ? ', many ties (relu zeros, few levels)' : ''}`, async () => {
        await compare('dx', () => {
          let x = rnd(c.x, 91);
          if (ties) x = tf.relu(tf.round(tf.mul(x, 2))); // values in {0, 1, 2}: most windows tie
          return tf.grad(
            (v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, c.size, c.strides, c.pad), 1)) as tf.Scalar,
          )(x);
        });
        await compare('dx weighted', () => {
          let x = rnd(c.x, 92);
          if (ties) x = tf.relu(tf.round(tf.mul(x, 2)));
          const y = tf.maxPool(x as tf.Tensor4D, c.size, c.strides, c.pad);
          return tf
            .engine()
            .runKernel(
              'MaxPoolGrad',
              { dy: rnd(y.shape, 93), input: x, output: y },
              { filterSize: c.size, strides: c.strides, pad: c.pad },
            ) as tf.Tensor;
        });
      });
    }
  }
});

describe('BatchMatMul and _FusedMatMul', () => {
  const combos: [boolean, boolean][] = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ];
  for (const [ta, tb] of combos) {
    test(`matMul transposeA=${ta} transposeB=${tb}: product and gradients`, async () => {
      const aShape = ta ? [17, 9] : [9, 17];
      const bShape = tb ? [13, 17] : [17, 13];
      await compare('matMul', () => tf.matMul(rnd(aShape, 41), rnd(bShape, 42), ta, tb));
      await compare('matMul grads', () => {
        const w = rnd([9, 13], 43);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb), w)),
        );
        return g([rnd(aShape, 41), rnd(bShape, 42)]);
      });
      await compare('batched matMul', () => tf.matMul(rnd([3, ...aShape], 44), rnd([3, ...bShape], 45), ta, tb));
      await compare('broadcast batch matMul', () =>
        tf.matMul(rnd([1, ...aShape], 46), rnd([2, ...bShape], 47), ta, tb),
      );
      await compare('fused matMul + bias + relu', () =>
        tf.fused.matMul({
          a: rnd(aShape, 48),
          b: rnd(bShape, 49),
          transposeA: ta,
          transposeB: tb,
          bias: rnd([13], 50),
          activation: 'relu',
        }),
      );
      await compare('fused matMul grads', () => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) =>
          tf.sum(tf.square(tf.fused.matMul({ a: a, b: b, transposeA: ta, transposeB: tb, bias, activation: 'relu' }))),
        );
        return g([rnd(aShape, 51), rnd(bShape, 52), rnd([13], 53)]);
      });
    });
  }

  // Speed of the transposed path (about 10x stock) is measured in bench/wasm-kernels.ts, not here.
});

describe('UnsortedSegmentSum', () => {
  test('duplicates, empty segments, float32 and int32', async () => {
    const ids = [3, 0, 3, 1, 3, 0, 5];
    await compare('float32 rank 3', () => tf.unsortedSegmentSum(rnd([7, 3, 2], 61), tf.tensor1d(ids, 'int32'), 6));
    await compare('float32 rank 1', () => tf.unsortedSegmentSum(rnd([7], 62), tf.tensor1d(ids, 'int32'), 7));
    await compare('int32', () =>
      tf.unsortedSegmentSum(
        tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14], [7, 2], 'int32'),
        tf.tensor1d(ids, 'int32'),
        6,
      ),
    );
  });

  test('ids outside [0, numSegments) are dropped', async () => {
    await compare('out of range', () =>
      tf.unsortedSegmentSum(rnd([5, 3], 63), tf.tensor1d([1, -1, 4, 1, 0], 'int32'), 3),
    );
  });

  test('gradient of gather (rows of a matrix, repeated indices)', async () => {
    await compare('gather grad', () =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.gather(x, tf.tensor1d([2, 0, 2, 5], 'int32')), rnd([4, 3], 64))))(
        rnd([6, 3], 65),
      ),
    );
    await compare('gather grad axis 1', () =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.gather(x, tf.tensor1d([1, 1, 0], 'int32'), 1), rnd([4, 3], 66))))(
        rnd([4, 2], 67),
      ),
    );
  });
});

/** Conv net of the project's kind, small: returns [loss, ...gradients of every variable]. */
function smallConvNet(): tf.Tensor[] {
  const batch = 6;
  const x = rnd([batch, 16, 16, 3], 71);
  const vars = {
    w1: rnd([3, 3, 3, 6], 72),
    b1: rnd([6], 73),
    w2: rnd([4, 4, 6, 8], 74),
    b2: rnd([8], 75),
    w3: rnd([32, 10], 76),
    b3: rnd([10], 77),
    e1: rnd([2, 6], 78),
    e2: rnd([2, 8], 79),
  };
  const mask1 = tf.tensor(
    values(batch * 14 * 14 * 6, 80).map((v) => (v > -0.6 ? 1.25 : 0)),
    [batch, 14, 14, 6],
  );
  const labels = tf.oneHot(tf.tensor1d([0, 3, 9, 3, 7, 1], 'int32'), 10);
  const f = (
    w1: tf.Tensor,
    b1: tf.Tensor,
    w2: tf.Tensor,
    b2: tf.Tensor,
    w3: tf.Tensor,
    b3: tf.Tensor,
    e1: tf.Tensor,
    e2: tf.Tensor,
  ): tf.Scalar => {
    const s = 4;
    const g1 = tf.sigmoid(tf.mul(tf.reshape(tf.slice(e1, [1, 0], [1, 6]), [6]), s));
    const g2 = tf.sigmoid(tf.mul(tf.reshape(tf.slice(e2, [1, 0], [1, 8]), [8]), s));
    let h: tf.Tensor = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'valid'), b1)); // 14x14x6
    h = tf.mul(h, mask1); // dropout with a fixed mask
    h = tf.mul(tf.maxPool(h as tf.Tensor4D, 2, 2, 'valid'), g1); // 7x7x6
    h = tf.relu(tf.add(tf.conv2d(h as tf.Tensor4D, w2 as tf.Tensor4D, 1, 'valid'), b2)); // 4x4x8
    h = tf.mul(tf.maxPool(h as tf.Tensor4D, 2, 2, 'valid'), g2); // 2x2x8
    const logits = tf.add(tf.matMul(tf.reshape(h, [batch, -1]) as tf.Tensor2D, w3 as tf.Tensor2D), b3);
    const ce = tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1)));
    // HAT-style regulariser and compensation terms, to exercise their gradients too
    const reg = tf.div(tf.add(tf.sum(g1), tf.sum(g2)), 14);
    const comp = tf.mean(tf.div(tf.cosh(tf.clipByValue(tf.mul(e1, s), -5, 5)), tf.add(tf.cosh(e1), 1)));
    const norm = tf.sqrt(tf.add(tf.sum(tf.square(w3)), 1e-6));
    return tf.addN([ce, tf.mul(reg, 0.1), tf.mul(comp, 0.01), tf.mul(norm, 0.001)]) as tf.Scalar;
  };
  const names = Object.keys(vars) as (keyof typeof vars)[];
  const { value, grads } = tf.valueAndGrads((...args: tf.Tensor[]) => f(...(args as Parameters<typeof f>)))(
    names.map((n) => vars[n]),
  );
  return [value, ...grads];
}

describe('whole networks', () => {
  test('small conv net (conv 3x3/4x4, relu, dropout mask, maxPool, HAT gates, dense, logSoftmax CE): loss and all gradients', async () => {
    await compare('conv net', smallConvNet);
  });

  test('MLP with input gather (mixed-task batch style): all gradients via variableGrads', async () => {
    await compare('mlp', () => {
      const w1 = tf.variable(rnd([20, 16], 81), true, 'mlp/w1');
      const w2 = tf.variable(rnd([16, 5], 82), true, 'mlp/w2');
      const x = rnd([8, 20], 83);
      const idx = tf.tensor1d([0, 2, 3, 7], 'int32');
      const y = tf.oneHot(tf.tensor1d([1, 4, 0, 2], 'int32'), 5);
      const { value, grads } = tf.variableGrads(() => {
        const h = tf.relu(tf.matMul(x, w1));
        const logits = tf.matMul(tf.gather(h, idx), w2);
        return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1))) as tf.Scalar;
      });
      const out = [value, grads['mlp/w1'], grads['mlp/w2']];
      w1.dispose();
      w2.dispose();
      return out;
    });
  });
});

describe('memory', () => {
  test('no tensors or wasm buffers leak from the kernels or the gradients', () => {
    const run = () => {
      tf.dispose(tf.tidy(smallConvNet)); // tidy frees the net's inputs; kernel intermediates bypass it (buffer count)
      const a = rnd([9, 17], 1);
      const b = rnd([13, 17], 2);
      const c = rnd([17, 9], 7);
      tf.dispose([tf.matMul(a, b, false, true), tf.matMul(a, a, true, false), tf.matMul(c, b, true, true), a, b, c]);
      const x = rnd([5, 3], 3);
      const ids = tf.tensor1d([1, -1, 4, 1, 0], 'int32');
      tf.dispose([tf.unsortedSegmentSum(x, ids, 3), tf.unsortedSegmentSum(x, ids, 5), x, ids]);
      const xp = rnd([2, 9, 7, 3], 8);
      tf.dispose([tf.grad((v: tf.Tensor) => tf.sum(tf.maxPool(v as tf.Tensor4D, 3, 2, 'same')))(xp), xp]);
      const xi = rnd([2, 9, 9, 2], 4);
      const dy = rnd([2, 4, 4, 3], 5);
      const w = rnd([3, 3, 2, 3], 6);
      tf.dispose([
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x: xi, dy },
            { strides: 2, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 2, 3] },
          ) as tf.Tensor,
        tf
          .engine()
          .runKernel(
            'Conv2DBackpropInput',
            { dy, filter: w },
            { strides: 2, pad: 'valid', dataFormat: 'NHWC', inputShape: [2, 9, 9, 2] },
          ) as tf.Tensor,
        xi,
        dy,
        w,
      ]);
      try {
        tf.engine().runKernel(
          'Conv2DBackpropFilter',
          { x: xi, dy },
          { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] },
        );
      } catch {
        /* expected */
      }
    };
    run(); // warm-up (kernel setup, caches)
    const before = memory();
    for (let i = 0; i < 3; i++) run();
    assert.deepEqual(memory(), before);
  });

  test('a failing kernel releases its intermediates', () => {
    const before = memory();
    const a = rnd([4, 5], 1);
    const b = rnd([6, 7], 2);
    // inner shapes differ: the original kernel fails after the wrapper has transposed both operands
    assert.throws(
      () => tf.engine().runKernel('BatchMatMul', { a, b }, { transposeA: true, transposeB: true }),
      /inner shapes/,
    );
    tf.dispose([a, b]);
    assert.deepEqual(memory(), before);
  });
});

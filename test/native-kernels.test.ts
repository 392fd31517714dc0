/**
 * The leaner native kernels (src/backend/native-kernels.ts: Reshape, Sum, Max, Min, Mean, Transpose, Tile,
 * Slice, PadV2, ClipByValue with cached constant operands) against tfjs's pure-JS cpu backend, an
 * independent implementation, on float32, int32 and bool inputs; and the engine's tensor count unchanged by
 * the cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { backend } from './helpers';

type Case = [name: string, f: () => tf.Tensor];

function cases(): Case[] {
  const f = tf.tensor3d(
    Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.7) * 3),
    [2, 3, 4],
  );
  const i = tf.tensor2d(Array.from({ length: 12 }, (_, k) => (k * 7) % 11) as number[], [3, 4], 'int32');
  const b = tf.greater(tf.tensor2d([1, 0, 2, 0, 0, 3], [2, 3]), 0);
  return [
    ['Reshape float32', () => tf.reshape(f, [4, 6])],
    ['Reshape int32', () => tf.reshape(i, [2, 6])],
    ['Reshape bool', () => tf.reshape(b, [3, 2])],
    ['Sum axis 1 float32', () => tf.sum(f, 1)],
    ['Sum all int32, keepDims', () => tf.sum(i, undefined, true)],
    ['Max axis -1 float32', () => tf.max(f, -1)],
    ['Max axis 0 int32', () => tf.max(i, 0)],
    ['Min axes [0, 2] float32', () => tf.min(f, [0, 2])],
    ['Mean axis 2 float32', () => tf.mean(f, 2)],
    ['Transpose float32', () => tf.transpose(f, [2, 0, 1])],
    ['Transpose int32', () => tf.transpose(i)],
    ['Transpose bool', () => tf.transpose(b)],
    ['Tile float32', () => tf.tile(f, [1, 2, 1])],
    ['Tile int32', () => tf.tile(i, [2, 1])],
    ['Slice float32', () => tf.slice(f, [0, 1, 1], [2, 2, -1])],
    ['Slice int32', () => tf.slice(i, [1, 0], [2, 3])],
    [
      'PadV2 float32',
      () =>
        tf.pad(
          f,
          [
            [0, 0],
            [1, 2],
            [0, 1],
          ],
          0.5,
        ),
    ],
    ['ClipByValue float32', () => tf.clipByValue(f, -1.25, 2)],
  ];
}

test('the native kernels compute what tfjs-cpu computes, on every dtype they take; the tensor count is unchanged', async (t) => {
  const info = await backend();
  if (info.name !== 'tensorflow') return t.skip(`native backend not active (${info.name})`);
  const run = () =>
    tf.tidy(() => {
      const out = cases().map(([name, f]) => {
        const y = f();
        return { name, dtype: y.dtype, shape: y.shape, values: Array.from(y.dataSync()) };
      });
      return out;
    });
  const before = tf.memory().numTensors;
  const native = run();
  run(); // the second time from the cache
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind; cached operands are not engine tensors');
  await tf.setBackend('cpu');
  try {
    const cpu = run();
    for (let k = 0; k < cpu.length; k++) {
      const [n, c] = [native[k], cpu[k]];
      assert.equal(n.dtype, c.dtype, n.name);
      assert.deepEqual(n.shape, c.shape, n.name);
      assert.equal(n.values.length, c.values.length, n.name);
      for (let j = 0; j < c.values.length; j++)
        assert.ok(Math.abs(n.values[j] - c.values[j]) <= 1e-6 * Math.max(1, Math.abs(c.values[j])), `${n.name}[${j}]`);
    }
  } finally {
    await tf.setBackend('tensorflow');
  }
});

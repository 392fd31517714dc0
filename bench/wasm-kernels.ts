/**
 * Training throughput on the wasm backend with and without the kernels of src/wasm-kernels.ts.
 *
 *   npx tsx bench/wasm-kernels.ts [--steps N] [--profile]
 *
 * Models (batch 64, plain SGD step = gradients of softmax cross-entropy + update):
 * - AlexNet-like: 32x32x3 -> conv 4x4 64 -> conv 3x3 128 -> conv 2x2 256 (each relu, dropout mask, maxPool 2x2)
 *   -> fc 1024-2048-2048 (relu, dropout mask) -> head 10.
 * - MLP 784-2000-2000-10 (relu, dropout mask).
 * Configurations: all patched kernels; only the missing kernels added (Conv2DBackpropFilter,
 * UnsortedSegmentSum: what stock wasm needs to train at all); stock wasm. Stock wasm cannot train the
 * AlexNet (no Conv2DBackpropFilter), which is reported as such. Prints samples/s (median over timed steps).
 * --profile prints the wasm kernels taking the most time in one step of each model with all patches.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index';
import {
  WASM_TRAINING_KERNELS,
  installWasmTrainingKernels,
  uninstallWasmTrainingKernels,
} from '../src/backend/wasm-kernels';

const BATCH = 64;

function values(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * scale;
  }
  return out;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** Dropout mask for `shape` (keep probability 1 - rate, scaled), fixed for the benchmark. */
const mask = (shape: number[], rate: number, seed: number) =>
  tf.tensor(
    values(size(shape), seed).map((v) => ((v + 1) / 2 >= rate ? 1 / (1 - rate) : 0)),
    shape,
  );

interface Model {
  name: string;
  vars: tf.Variable[];
  x: tf.Tensor;
  y: tf.Tensor;
  loss: () => tf.Scalar;
  dispose(): void;
}

function param(shape: number[], fanIn: number, seed: number): tf.Variable {
  const t = tf.tensor(values(size(shape), seed, 1 / Math.sqrt(fanIn)), shape);
  const v = tf.variable(t);
  t.dispose();
  return v;
}

function crossEntropy(logits: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

function labels(seed: number): tf.Tensor {
  return tf.tidy(() =>
    tf.oneHot(
      tf.tensor1d(
        Array.from(values(BATCH, seed), (v) => Math.floor((v + 1) * 5) % 10),
        'int32',
      ),
      10,
    ),
  );
}

function alexnet(): Model {
  const convs = [
    [4, 3, 64],
    [3, 64, 128],
    [2, 128, 256],
  ];
  const fcs = [
    [1024, 2048],
    [2048, 2048],
    [2048, 10],
  ];
  const vars: tf.Variable[] = [];
  convs.forEach(([k, i, o], l) => vars.push(param([k, k, i, o], k * k * i, 10 + l), param([o], k * k * i, 20 + l)));
  fcs.forEach(([i, o], l) => vars.push(param([i, o], i, 30 + l), param([o], i, 40 + l)));
  const sides = [29, 12, 5];
  const masks = [
    ...convs.map(([, , o], l) => mask([BATCH, sides[l], sides[l], o], l < 2 ? 0.2 : 0.5, 50 + l)),
    mask([BATCH, 2048], 0.5, 60),
    mask([BATCH, 2048], 0.5, 61),
  ];
  const x = tf.tensor(values(BATCH * 32 * 32 * 3, 1), [BATCH, 32, 32, 3]);
  const y = labels(2);
  const loss = () => {
    let h: tf.Tensor = x;
    for (let l = 0; l < 3; l++) {
      h = tf.relu(tf.add(tf.conv2d(h as tf.Tensor4D, vars[2 * l] as tf.Tensor4D, 1, 'valid'), vars[2 * l + 1]));
      h = tf.maxPool(tf.mul(h, masks[l]) as tf.Tensor4D, 2, 2, 'valid');
    }
    h = tf.reshape(h, [BATCH, -1]);
    for (let l = 3; l < 6; l++) {
      h = tf.add(tf.matMul(h as tf.Tensor2D, vars[2 * l] as tf.Tensor2D), vars[2 * l + 1]);
      if (l < 5) h = tf.mul(tf.relu(h), masks[l]);
    }
    return crossEntropy(h, y);
  };
  return { name: 'AlexNet-like', vars, x, y, loss, dispose: () => tf.dispose([...vars, ...masks, x, y]) };
}

function mlp(): Model {
  const layers = [
    [784, 2000],
    [2000, 2000],
    [2000, 10],
  ];
  const vars = layers.flatMap(([i, o], l) => [param([i, o], i, 70 + l), param([o], i, 80 + l)]);
  const masks = [mask([BATCH, 784], 0.2, 90), mask([BATCH, 2000], 0.5, 91), mask([BATCH, 2000], 0.5, 92)];
  const x = tf.tensor(values(BATCH * 784, 3), [BATCH, 784]);
  const y = labels(4);
  const loss = () => {
    let h = tf.mul(x, masks[0]);
    for (let l = 0; l < 3; l++) {
      h = tf.add(tf.matMul(h as tf.Tensor2D, vars[2 * l] as tf.Tensor2D), vars[2 * l + 1]);
      if (l < 2) h = tf.mul(tf.relu(h), masks[l + 1]);
    }
    return crossEntropy(h, y);
  };
  return { name: 'MLP 784-2000-2000-10', vars, x, y, loss, dispose: () => tf.dispose([...vars, ...masks, x, y]) };
}

/** One SGD step; returns the loss. */
function step(model: Model, lr = 0.01): number {
  const { value, grads } = tf.variableGrads(model.loss, model.vars);
  tf.tidy(() => {
    for (const v of model.vars) v.assign(tf.sub(v, tf.mul(grads[v.name], lr)));
  });
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Samples/s of `steps` timed steps after one warm-up step, or the error that stopped training. */
function measure(model: Model, steps: number): { rate?: number; error?: string; ms?: number } {
  try {
    step(model);
    const times: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      const loss = step(model);
      times.push(performance.now() - t0);
      if (!Number.isFinite(loss)) return { error: `loss ${loss}` };
    }
    const ms = median(times);
    return { rate: (BATCH * 1000) / ms, ms };
  } catch (e) {
    return { error: String((e as Error).message ?? e).split('\n')[0] };
  }
}

const CONFIGS: { name: string; kernels: readonly string[] }[] = [
  { name: 'all patched kernels', kernels: WASM_TRAINING_KERNELS },
  { name: 'missing kernels only', kernels: ['Conv2DBackpropFilter', 'UnsortedSegmentSum'] },
  { name: 'stock wasm', kernels: [] },
];

async function profile(model: Model): Promise<void> {
  installWasmTrainingKernels();
  step(model);
  const info = await tf.profile(() => {
    step(model);
  });
  const byKernel = new Map<string, number>();
  for (const k of info.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  const total = [...byKernel.values()].reduce((a, b) => a + b, 0);
  const top = [...byKernel.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10);
  console.log(`  profile of one ${model.name} step (kernel time ${total.toFixed(0)} ms):`);
  for (const [name, ms] of top)
    console.log(
      `    ${name.padEnd(22)} ${ms.toFixed(1).padStart(8)} ms  ${((100 * ms) / total).toFixed(0).padStart(3)}%`,
    );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const stepsArg = args.indexOf('--steps');
  const steps = stepsArg >= 0 ? Number(args[stepsArg + 1]) : 4;
  const info = await initBackend('wasm');
  console.log(
    `backend ${info.name} (${info.package}), tfjs-core ${info.tfjsCore}, batch ${BATCH}, ${steps} timed steps after 1 warm-up`,
  );
  for (const make of [alexnet, mlp]) {
    const model = make();
    console.log(model.name);
    for (const config of CONFIGS) {
      uninstallWasmTrainingKernels();
      installWasmTrainingKernels(config.kernels);
      // the stock kernels are far slower: fewer steps keep the whole run short
      const r = measure(
        model,
        config.kernels.length === WASM_TRAINING_KERNELS.length ? steps : Math.max(2, Math.ceil(steps / 2)),
      );
      const text =
        r.rate !== undefined
          ? `${r.rate.toFixed(1).padStart(7)} samples/s  (${r.ms!.toFixed(0)} ms/step)`
          : `cannot train: ${r.error}`;
      console.log(`  ${config.name.padEnd(22)} ${text}`);
    }
    if (args.includes('--profile')) await profile(model);
    model.dispose();
  }
  installWasmTrainingKernels();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

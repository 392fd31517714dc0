/**
 * Where a training step's time goes, kernel by kernel: one approach at its second task (bench/common.ts),
 * the step timed as a whole, then one step under tf.profile with every kernel's time grouped by kernel and
 * output shape. The basis of the profiles in bench/README.md.
 *
 *   npx tsx bench/profile.ts [--net mlp|alexnet] [--approach hat] [--backend native|wasm] [--top 20]
 *
 * On the native backend every TensorFlow op is timed as it executes (tfjs-node's executeSingleOutput and
 * executeMultipleOutputs, eager and synchronous on the CPU): the ops of tfjs kernels and those this project
 * runs directly (ReluGrad, L2Loss, the dropout noise, the fused kernels of backend/fused-kernels.ts), each
 * with its N-API call. Elsewhere tf.profile times each tfjs kernel. The gap to the step's wall time is the
 * cost of JavaScript around the ops (taping, tensor bookkeeping) and of profiling itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index';
import { type NativeBackend, nativeBackend } from '../src/backend/native-ops';
import type { NetworkKind } from '../src/nets/config';
import { BATCH, arg, atSecondTask, median, position, randomBatch } from './common';

/**
 * FLOPs (2 per multiply-add) of a kernel that multiplies an [m, k] by a [k, n] matrix into [m, n], in either
 * operand order or transposition (the dense layers' forward and both gradients); 0 for any other kernel
 * (convolutions are not counted).
 */
function matmulFlops(name: string, inputs: number[][], output: number[]): number {
  if (!/MatMul/.test(name)) return 0;
  const dims = (s: number[] | undefined) => (s ?? []).filter((d) => d !== 1);
  const [a, b] = [dims(inputs[0]), dims(inputs[1])];
  const o = dims(output);
  if (a.length !== 2 || b.length !== 2 || o.length !== 2) return 0;
  const [m, n] = o;
  for (const [x, y] of [
    [a, b],
    [b, a],
  ]) {
    const k = x.includes(m) ? x[x.indexOf(m) === 0 ? 1 : 0] : -1;
    if (k > 0 && y.includes(k) && y.includes(n)) return 2 * m * n * k;
  }
  return 0;
}

interface Timed {
  name: string;
  inputShapes: number[][];
  outputShapes: number[][];
  ms: number;
}

/** Times every TensorFlow op the native backend executes while `fn` runs. */
function timeNativeOps(b: NativeBackend, fn: () => void): Timed[] {
  const ops: Timed[] = [];
  const single = b.executeSingleOutput.bind(b);
  const multiple = b.executeMultipleOutputs.bind(b);
  const shapes = (ts: tf.TensorInfo[]) => ts.map((t) => [...t.shape]);
  b.executeSingleOutput = (name, attrs, inputs) => {
    const t0 = performance.now();
    const out = single(name, attrs, inputs);
    ops.push({ name, inputShapes: shapes(inputs), outputShapes: [[...out.shape]], ms: performance.now() - t0 });
    return out;
  };
  b.executeMultipleOutputs = (name, attrs, inputs, n) => {
    const t0 = performance.now();
    const outs = multiple(name, attrs, inputs, n);
    ops.push({ name, inputShapes: shapes(inputs), outputShapes: shapes(outs), ms: performance.now() - t0 });
    return outs;
  };
  try {
    fn();
  } finally {
    // back to the prototype's methods
    delete (b as Partial<NativeBackend>).executeSingleOutput;
    delete (b as Partial<NativeBackend>).executeMultipleOutputs;
  }
  return ops;
}

/** Every tfjs kernel of `fn` timed by tf.profile; composites (custom gradients) left out, their kernels kept. */
async function timeKernels(fn: () => void): Promise<Timed[]> {
  const profile = await tf.profile(fn);
  const composite = (name: string) => tf.getKernel(name, tf.getBackend()) === undefined;
  const out: Timed[] = [];
  for (const k of profile.kernels)
    if (!composite(k.name))
      out.push({
        name: k.name,
        inputShapes: k.inputShapes as number[][],
        outputShapes: k.outputShapes as number[][],
        ms: Number(await k.kernelTimeMs),
      });
  return out;
}

async function main(): Promise<void> {
  const backend = await initBackend(arg('--backend', 'native'));
  const kind = arg('--net', 'mlp') as NetworkKind;
  const id = arg('--approach', 'hat');
  const top = Number(arg('--top', '20'));
  const learner = atSecondTask(id, kind, Array<number>(10).fill(10));
  const batch = randomBatch(kind);
  let i = 0;
  const step = () => {
    const loss = learner.trainBatch(batch, position(i++));
    loss.dataSync();
    loss.dispose();
  };
  for (let w = 0; w < 10; w++) step();
  const walls: number[] = [];
  for (let r = 0; r < 30; r++) {
    const t0 = performance.now();
    step();
    walls.push(performance.now() - t0);
  }
  const wall = median(walls);
  const native = nativeBackend();
  // the median of 5 profiled steps, op by op (a single step is at the mercy of this machine's noise)
  const runs: Timed[][] = [];
  for (let r = 0; r < 5; r++) runs.push(native ? timeNativeOps(native, step) : await timeKernels(step));
  const ops = runs[0].map((op, i) => ({ ...op, ms: median(runs.map((run) => run[i]?.ms ?? op.ms)) }));
  const groups = new Map<string, { ms: number; n: number; flops: number }>();
  let kernelMs = 0;
  let flops = 0;
  for (const k of ops) {
    const out = k.outputShapes[0] ?? [];
    const f = matmulFlops(k.name, k.inputShapes, out);
    kernelMs += k.ms;
    flops += f;
    const key = `${k.name} ${JSON.stringify(out)}`;
    const g = groups.get(key) ?? { ms: 0, n: 0, flops: 0 };
    g.ms += k.ms;
    g.n++;
    g.flops += f;
    groups.set(key, g);
  }
  const matmulMs = [...groups.values()].filter((g) => g.flops > 0).reduce((a, g) => a + g.ms, 0);
  console.log(
    `${id} ${kind} on ${backend.name}, batch ${BATCH}, task 2: ${wall.toFixed(1)} ms per step (median of 30), ` +
      `${((BATCH / wall) * 1000).toFixed(0)} samples/s`,
  );
  console.log(
    `  ${ops.length} ${native ? 'TensorFlow ops' : 'kernels'}, ${kernelMs.toFixed(1)} ms inside them, ` +
      `${(wall - kernelMs).toFixed(1)} ms JavaScript around them; matmuls ${matmulMs.toFixed(1)} ms for ${(flops / 1e9).toFixed(2)} GFLOP ` +
      `(${(flops / 1e6 / Math.max(matmulMs, 1e-9)).toFixed(0)} GFLOP/s)`,
  );
  for (const [key, g] of [...groups.entries()].sort((p, q) => q[1].ms - p[1].ms).slice(0, top))
    console.log(`  ${g.ms.toFixed(2).padStart(8)} ms ${String(g.n).padStart(4)}x ${key}`);
  tf.dispose([batch.x, batch.y]);
  learner.dispose();
}

void main();

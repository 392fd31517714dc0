/**
 * Where a training step's time goes, kernel by kernel: one approach at its second task (bench/common.ts),
 * the step timed as a whole, then one step under tf.profile with every kernel's time grouped by kernel and
 * output shape. The basis of the profiles in bench/README.md.
 *
 *   npx tsx bench/profile.ts [--net mlp|alexnet] [--approach hat] [--backend native|wasm] [--top 20]
 *
 * Kernel time is measured by the backend around each kernel; the gap to the step's wall time is the cost of
 * dispatching ops from JavaScript (taping, N-API calls, tensor bookkeeping) and of profiling itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index';
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
  const profile = await tf.profile(step);
  const groups = new Map<string, { ms: number; n: number; flops: number }>();
  let kernelMs = 0;
  let flops = 0;
  // a composite (a custom-gradient function such as the fused hidden layer, `forward`) is listed with the
  // kernels inside it: shown, but not added to the totals
  const composite = (name: string) => tf.getKernel(name, tf.getBackend()) === undefined;
  for (const k of profile.kernels) {
    const ms = Number(await k.kernelTimeMs);
    if (composite(k.name)) {
      const key = `${k.name} ${JSON.stringify(k.outputShapes[0] ?? [])} (composite: the kernels inside it are listed too)`;
      const g = groups.get(key) ?? { ms: 0, n: 0, flops: 0 };
      g.ms += ms;
      g.n++;
      groups.set(key, g);
      continue;
    }
    const out = (k.outputShapes[0] ?? []) as number[];
    const f = matmulFlops(k.name, k.inputShapes as number[][], out);
    kernelMs += ms;
    flops += f;
    const key = `${k.name} ${JSON.stringify(out)}`;
    const g = groups.get(key) ?? { ms: 0, n: 0, flops: 0 };
    g.ms += ms;
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
    `  ${profile.kernels.length} kernels, ${kernelMs.toFixed(1)} ms inside them, ${(wall - kernelMs).toFixed(1)} ms ` +
      `dispatch; matmuls ${matmulMs.toFixed(1)} ms for ${(flops / 1e9).toFixed(2)} GFLOP ` +
      `(${(flops / 1e6 / Math.max(matmulMs, 1e-9)).toFixed(0)} GFLOP/s)`,
  );
  for (const [key, g] of [...groups.entries()].sort((p, q) => q[1].ms - p[1].ms).slice(0, top))
    console.log(`  ${g.ms.toFixed(2).padStart(8)} ms ${String(g.n).padStart(4)}x ${key}`);
  tf.dispose([batch.x, batch.y]);
  learner.dispose();
}

void main();

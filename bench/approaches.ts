/**
 * Training-step throughput of every approach on the mixture AlexNet (or the baselines' MLP), on the
 * backend `auto` picks (or --backend), at task 2 so that each approach's per-task machinery is active
 * (frozen copies, anchors, Fisher weights, HAT masks, PNN laterals, a PathNet path).
 *
 *   npx tsx bench/approaches.ts [--net alexnet|mlp] [--steps N] [--backend native|wasm|...] [ids...]
 *
 * Prints samples/s (median over timed steps, batch 64) per approach, after two warm-up steps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index';
import { APPROACH_IDS, isReference } from '../src/approaches/catalog';
import { BATCH, arg, atSecondTask, median, position, randomBatch } from './common';

(async () => {
  const info = await initBackend(arg('--backend', 'auto'));
  const kind = arg('--net', 'alexnet') as 'alexnet' | 'mlp';
  const steps = Number(arg('--steps', '6'));
  const ids = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
  const chosen = ids.length ? ids : APPROACH_IDS.filter((id) => !isReference(id) && id !== 'sgd-restart');
  const heads = [100, 10, 100, 10, 10, 10, 43, 10];
  const batch = randomBatch(kind);
  console.log(`backend ${info.name}, ${kind}, batch ${BATCH}`);
  for (const id of chosen) {
    const a = atSecondTask(id, kind, heads);
    const times: number[] = [];
    for (let s = 0; s < steps + 2; s++) {
      const t0 = performance.now();
      const loss = a.trainBatch(batch, position(s, 0.01));
      loss.dataSync();
      loss.dispose();
      if (s >= 2) times.push(performance.now() - t0);
    }
    console.log(
      `${id.padEnd(12)} ${((BATCH * 1000) / median(times)).toFixed(0).padStart(6)} samples/s   (${a.model.parameterCount().toLocaleString('en')} parameters)`,
    );
    a.dispose();
  }
  tf.dispose([batch.x, batch.y]);
})();

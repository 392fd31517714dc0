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
import { AnchoredLearner } from '../src/approaches/anchored';
import { createApproach, parseApproachParams } from '../src/approaches/index';
import { APPROACH_IDS, isReference } from '../src/approaches/catalog';
import { type Learner } from '../src/training/types';
import { PathNet, randomPath } from '../src/approaches/pathnet';
import { type Task } from '../src/data/experiments';
import { Rng } from '../src/core/rng';

const BATCH = 64;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

(async () => {
  const info = await initBackend(arg('--backend', 'auto'));
  const kind = arg('--net', 'alexnet') as 'alexnet' | 'mlp';
  const steps = Number(arg('--steps', '6'));
  const ids = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
  const chosen = ids.length ? ids : APPROACH_IDS.filter((id) => !isReference(id) && id !== 'sgd-restart');
  const heads = [100, 10, 100, 10, 10, 10, 43, 10];
  const inputShape = kind === 'alexnet' ? [32, 32, 3] : [784];
  const rng = new Rng('bench');
  const x = tf.tensor(rng.normalArray(BATCH * inputShape.reduce((a, b) => a * b, 1)), [BATCH, ...inputShape]);
  const y = tf.tensor1d(
    Array.from({ length: BATCH }, (_, i) => i % 10),
    'int32',
  );
  const batch = { x, y, tasks: new Int32Array(BATCH).fill(1), task: 1, size: BATCH };
  const tasks = heads.map(
    (classes, index) => ({ index, name: `t${index}`, classes, train: { rows: new Int32Array(0) } }) as unknown as Task,
  );
  console.log(`backend ${info.name}, ${kind}, batch ${BATCH}`);
  for (const id of chosen) {
    const a = createApproach(id, { kind, inputShape, heads, params: parseApproachParams(id, []), seed: 0 }) as Learner;
    // reach task 2 without data
    a.beginTask(0, tasks);
    if (a instanceof PathNet) {
      a.bestPaths.push(randomPath(rng, a.model.layers.length, 16, 3));
      a.beginTask(1, tasks);
      a.candidate = randomPath(rng, a.model.layers.length, 16, 3);
    } else {
      if (a instanceof AnchoredLearner) {
        // EWC/IMM need the training set for their Fisher: anchor and (EWC) weights set directly instead
        const anchored = a as unknown as {
          setAnchorToCurrent(): void;
          anchoredVariables(): tf.Variable[];
          anchorWeights: tf.Tensor[] | null;
        };
        anchored.setAnchorToCurrent();
        if (id === 'ewc') anchored.anchorWeights = anchored.anchoredVariables().map((v) => tf.onesLike(v));
      } else a.endTask(0, tasks);
      a.beginTask(1, tasks);
    }
    const times: number[] = [];
    for (let s = 0; s < steps + 2; s++) {
      const t0 = performance.now();
      const loss = a.trainBatch(batch, {
        epoch: 1,
        batch: s,
        batches: steps + 2,
        start: s * BATCH,
        samples: (steps + 2) * BATCH,
        lr: 0.01,
      });
      loss.dataSync();
      loss.dispose();
      if (s >= 2) times.push(performance.now() - t0);
    }
    times.sort((p, q) => p - q);
    const median = times[Math.floor(times.length / 2)];
    console.log(
      `${id.padEnd(12)} ${((BATCH * 1000) / median).toFixed(0).padStart(6)} samples/s   (${a.model.parameterCount().toLocaleString('en')} parameters)`,
    );
    a.dispose();
  }
  tf.dispose([x, y]);
})();

/** Shared pieces of the benchmarks: an approach brought to its second task without data, a fixed batch, timing. */
import * as tf from '@tensorflow/tfjs-core';
import { AnchoredLearner } from '../src/approaches/anchored';
import { createApproach } from '../src/approaches/index';
import { PathNet, randomPath } from '../src/approaches/pathnet';
import { Rng } from '../src/core/rng';
import type { Batch, Task } from '../src/data/experiments';
import type { NetworkKind } from '../src/nets/config';
import type { Learner, StepPosition } from '../src/training/types';

export const BATCH = 64;

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** A fixed random batch of task 2 (index 1) for a network kind. */
export function randomBatch(kind: NetworkKind, size = BATCH, seed = 'bench'): Batch {
  const inputShape = kind === 'alexnet' ? [32, 32, 3] : [784];
  const rng = new Rng(seed);
  const x = tf.tensor(rng.normalArray(size * inputShape.reduce((a, b) => a * b, 1)), [size, ...inputShape]);
  const y = tf.tensor1d(
    Array.from({ length: size }, (_, i) => i % 10),
    'int32',
  );
  return { x, y, tasks: new Int32Array(size).fill(1), task: 1, size };
}

/**
 * An approach at the start of its second task, its per-task machinery active (HAT's masks, frozen copies,
 * anchors and Fisher weights, a PathNet path), without training data: EWC/IMM get their anchor (and unit
 * Fisher weights) directly.
 */
export function atSecondTask(id: string, kind: NetworkKind, heads: number[], hidden?: number[]): Learner {
  const inputShape = kind === 'alexnet' ? [32, 32, 3] : [784];
  const tasks = heads.map(
    (classes, index) => ({ index, name: `t${index}`, classes, train: { rows: new Int32Array(0) } }) as unknown as Task,
  );
  const a = createApproach(id, { kind, inputShape, heads, network: { hidden }, seed: 0 }) as Learner;
  const rng = new Rng('bench/paths');
  a.beginTask(0, tasks);
  if (a instanceof PathNet) {
    a.bestPaths.push(randomPath(rng, a.model.layers.length, 16, 3));
    a.beginTask(1, tasks);
    a.candidate = randomPath(rng, a.model.layers.length, 16, 3);
    return a;
  }
  if (a instanceof AnchoredLearner) {
    const anchored = a as unknown as {
      setAnchorToCurrent(): void;
      anchoredVariables(): tf.Variable[];
      anchorWeights: tf.Tensor[] | null;
    };
    anchored.setAnchorToCurrent();
    if (id === 'ewc') anchored.anchorWeights = anchored.anchoredVariables().map((v) => tf.onesLike(v));
  } else a.endTask(0, tasks);
  a.beginTask(1, tasks);
  return a;
}

/** The position of step i of a long epoch (HAT's s sweeps through its range). */
export function position(i: number, lr = 0.05): StepPosition {
  const batches = 100;
  return { epoch: 1, batch: i % batches, batches, start: (i % batches) * BATCH, samples: batches * BATCH, lr };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function rssMb(): number {
  return process.memoryUsage().rss / 1048576;
}

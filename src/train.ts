/**
 * The per-task training protocol shared by every approach (spec §4): plain SGD on shuffled mini-batches,
 * validation objective after each epoch, patience-based learning-rate decay, early stop, and restore of the
 * best-validation snapshot.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Approach } from './approaches/approach';
import { Task } from './data/experiments';
import { ProgressReporter, createProgress } from './progress';
import { Rng } from './rng';

export interface TrainOptions {
  /** Max epochs per task (200). */
  nepochs: number;
  /** Initial learning rate of every task (0.05). */
  lr: number;
  /** Stop the task when lr falls below this (1e-4). */
  lrMin: number;
  /** Divide lr by this after `patience` epochs without improvement (3). */
  lrFactor: number;
  patience: number;
  batchSize: number;
}

export const TRAIN_DEFAULTS: TrainOptions = { nepochs: 200, lr: 0.05, lrMin: 1e-4, lrFactor: 3, patience: 5, batchSize: 64 };

export interface EpochLog {
  epoch: number;
  lr: number;
  trainLoss: number;
  validLoss: number;
  best: boolean;
  seconds: number;
}

export interface TaskLog {
  task: number;
  epochs: EpochLog[];
  bestEpoch: number;
  trainSeconds: number;
}

export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
}

/** Hook called after every epoch (monitoring: mask usage per epoch, etc.). */
export type EpochHook = (task: number, log: EpochLog) => void;

/** Learns task t with `approach`; returns the epoch log. Batch shuffling is seeded by (seed, t). */
export function trainTask(approach: Approach, t: number, tasks: Task[], opts: TrainOptions, seed: number, progress: ProgressReporter = createProgress('quiet'), onEpoch?: EpochHook): TaskLog {
  const started = performance.now();
  const { train, valid } = approach.sources(t, tasks);
  approach.beginTask(t, tasks);
  const log: TaskLog = { task: t, epochs: [], bestEpoch: 0, trainSeconds: 0 };
  if (!approach.trains) return log;
  approach.net?.reseedDropout(`${seed}/${t}`);
  const rng = new Rng(`shuffle/${seed}/${t}`);
  const order = Int32Array.from({ length: train.n }, (_, i) => i);
  const batches = Math.ceil(train.n / opts.batchSize);
  approach.setBatchesPerEpoch?.(batches);

  let lr = opts.lr;
  let patience = opts.patience;
  let bestLoss = Infinity;
  let best = approach.snapshot();
  for (let epoch = 1; epoch <= opts.nepochs; epoch++) {
    const epochStart = performance.now();
    rng.shuffle(order);
    progress.startEpoch({ task: t, tasks: tasks.length, taskName: tasks[t].name, epoch, maxEpochs: opts.nepochs, batches, lr });
    let lossSum = tf.scalar(0);
    for (let b = 0, start = 0; start < train.n; b++, start += opts.batchSize) {
      const end = Math.min(train.n, start + opts.batchSize);
      const batch = train.batch(order, start, end);
      const loss = approach.trainBatch(batch, lr, start / train.n);
      const previous = lossSum;
      lossSum = tf.tidy(() => tf.add(previous, tf.mul(loss, batch.size)) as tf.Scalar);
      previous.dispose();
      progress.batch(b + 1, progress.wantsLoss() ? loss.dataSync()[0] : undefined);
      tf.dispose([loss, batch.x, batch.y]);
    }
    const trainLoss = lossSum.dataSync()[0] / train.n;
    lossSum.dispose();
    if (!Number.isFinite(trainLoss)) {
      tf.dispose(best);
      throw new NonFiniteLossError(
        `the training loss of task ${t + 1} (${tasks[t].name}) became ${trainLoss} in epoch ${epoch} (lr ${lr}). ` +
          'Lower the learning rate (--lr) or the gradient clip (--parameter clipNorm=...), or check the input data.',
      );
    }
    const validLoss = approach.validationLoss(valid);
    const improved = validLoss < bestLoss;
    if (improved) {
      bestLoss = validLoss;
      tf.dispose(best);
      best = approach.snapshot();
      patience = opts.patience;
      log.bestEpoch = epoch;
    }
    const entry: EpochLog = { epoch, lr, trainLoss, validLoss, best: improved, seconds: (performance.now() - epochStart) / 1000 };
    log.epochs.push(entry);
    progress.endEpoch({ trainLoss, validLoss, best: improved, seconds: entry.seconds });
    onEpoch?.(t, entry);
    if (!improved) {
      patience--;
      if (patience <= 0) {
        lr /= opts.lrFactor;
        if (lr < opts.lrMin) break;
        patience = opts.patience;
      }
    }
  }
  approach.restore(best);
  tf.dispose(best);
  approach.endTask(t, tasks);
  log.trainSeconds = (performance.now() - started) / 1000;
  return log;
}

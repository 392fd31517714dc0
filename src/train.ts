/**
 * The per-task training protocol shared by every approach (spec §4): plain SGD on shuffled mini-batches,
 * validation objective after each epoch, patience-based learning-rate decay, early stop, and restore of the
 * best-validation snapshot.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Approach } from './approaches/approach';
import { SampleSource, Task } from './data/experiments';
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
  /** PathNet: which candidate path trained this epoch, in which generation. */
  path?: number;
  generation?: number;
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

/** Hook called after every epoch, with the approach being trained (monitoring: mask usage per epoch, etc.). */
export type EpochHook = (task: number, log: EpochLog, approach: Approach) => void;

/**
 * Patience-based learning-rate schedule of one learner (spec §4.2): after `patience` epochs without a lower
 * validation loss divide lr by `lrFactor` and reset patience; the learner is done once lr < lrMin.
 */
export class LrSchedule {
  lr: number;
  bestLoss = Infinity;
  private patience: number;
  constructor(private readonly opts: TrainOptions, lr = opts.lr) {
    this.lr = lr;
    this.patience = opts.patience;
  }
  /** Records an epoch's validation loss; true when it is the best so far. */
  update(validLoss: number): boolean {
    if (validLoss < this.bestLoss) {
      this.bestLoss = validLoss;
      this.patience = this.opts.patience;
      return true;
    }
    if (--this.patience <= 0) {
      this.lr /= this.opts.lrFactor;
      if (!this.done) this.patience = this.opts.patience;
    }
    return false;
  }
  get done(): boolean {
    return this.lr < this.opts.lrMin;
  }
  /** Start again from `lr` with fresh patience and no best loss (PathNet's mutated paths). */
  reset(lr: number): void {
    this.lr = lr;
    this.bestLoss = Infinity;
    this.patience = this.opts.patience;
  }
}

/**
 * Runs epochs of one task: shuffles (seeded per run and task), trains every batch, computes the validation
 * objective, reports progress, checks for a non-finite loss, and appends to the task's log. Approaches with
 * their own task-level loop (PathNet) drive it through `Approach.learnTask`.
 */
export class EpochRunner {
  readonly log: TaskLog;
  private readonly rng: Rng;
  private readonly order: Int32Array;
  readonly batches: number;
  /** Most epochs the task can take (progress ETA); an approach with its own loop may raise it. */
  maxEpochs: number;

  constructor(
    readonly approach: Approach,
    readonly t: number,
    readonly tasks: Task[],
    readonly opts: TrainOptions,
    readonly seed: number,
    readonly train: SampleSource,
    readonly valid: SampleSource,
    private readonly progress: ProgressReporter,
    private readonly onEpoch?: EpochHook,
  ) {
    this.log = { task: t, epochs: [], bestEpoch: 0, trainSeconds: 0 };
    this.rng = new Rng(`shuffle/${seed}/${t}`);
    this.order = Int32Array.from({ length: train.n }, (_, i) => i);
    this.batches = Math.ceil(train.n / opts.batchSize);
    this.maxEpochs = opts.nepochs;
  }

  /** One epoch at learning rate lr; `best` marks the log entry (decided by the caller's schedule). */
  epoch(lr: number, label: Partial<Pick<EpochLog, 'path' | 'generation'>> = {}): EpochLog {
    const { approach, train, opts, t, tasks } = this;
    const epochStart = performance.now();
    const epoch = this.log.epochs.length + 1;
    this.rng.shuffle(this.order);
    this.progress.startEpoch({ task: t, tasks: tasks.length, taskName: tasks[t].name, epoch, maxEpochs: this.maxEpochs, batches: this.batches, lr });
    let lossSum = tf.scalar(0);
    for (let b = 0, start = 0; start < train.n; b++, start += opts.batchSize) {
      const end = Math.min(train.n, start + opts.batchSize);
      const batch = train.batch(this.order, start, end);
      const loss = approach.trainBatch(batch, lr, start / train.n);
      const previous = lossSum;
      lossSum = tf.tidy(() => tf.add(previous, tf.mul(loss, batch.size)) as tf.Scalar);
      previous.dispose();
      this.progress.batch(b + 1, this.progress.wantsLoss() ? loss.dataSync()[0] : undefined);
      tf.dispose([loss, batch.x, batch.y]);
    }
    const trainLoss = lossSum.dataSync()[0] / train.n;
    lossSum.dispose();
    if (!Number.isFinite(trainLoss)) {
      throw new NonFiniteLossError(
        `the training loss of task ${t + 1} (${tasks[t].name}) became ${trainLoss} in epoch ${epoch} (lr ${lr}). ` +
          'Lower the learning rate (--lr) or the gradient clip (--parameter clipNorm=...), or check the input data.',
      );
    }
    const validLoss = approach.validationLoss(this.valid);
    const entry: EpochLog = { epoch, lr, trainLoss, validLoss, best: false, seconds: (performance.now() - epochStart) / 1000, ...label };
    this.log.epochs.push(entry);
    return entry;
  }

  /** Reports a finished epoch (after the caller set `best`). */
  finish(entry: EpochLog): void {
    if (entry.best) this.log.bestEpoch = entry.epoch;
    this.progress.endEpoch({ trainLoss: entry.trainLoss, validLoss: entry.validLoss, best: entry.best, seconds: entry.seconds });
    this.onEpoch?.(this.t, entry, this.approach);
  }
}

/** The standard loop (spec §4): epochs until lr < lrMin or nepochs, then restore the best snapshot. */
function standardLoop(runner: EpochRunner): void {
  const { approach, opts } = runner;
  const schedule = new LrSchedule(opts);
  let best = approach.snapshot();
  try {
    for (let e = 1; e <= opts.nepochs && !schedule.done; e++) {
      const entry = runner.epoch(schedule.lr);
      entry.best = schedule.update(entry.validLoss);
      if (entry.best) {
        tf.dispose(best);
        best = approach.snapshot();
      }
      runner.finish(entry);
    }
    approach.restore(best);
  } finally {
    tf.dispose(best);
  }
}

/** Learns task t with `approach`; returns the epoch log. Batch shuffling is seeded by (seed, t). */
export function trainTask(approach: Approach, t: number, tasks: Task[], opts: TrainOptions, seed: number, progress: ProgressReporter = createProgress('quiet'), onEpoch?: EpochHook): TaskLog {
  const started = performance.now();
  const { train, valid } = approach.sources(t, tasks);
  approach.beginTask(t, tasks);
  const runner = new EpochRunner(approach, t, tasks, opts, seed, train, valid, progress, onEpoch);
  if (!approach.trains) return runner.log;
  approach.model?.reseedDropout(`${seed}/${t}`);
  approach.setBatchesPerEpoch?.(runner.batches);
  if (approach.learnTask) approach.learnTask(runner);
  else standardLoop(runner);
  approach.endTask(t, tasks);
  runner.log.trainSeconds = (performance.now() - started) / 1000;
  return runner.log;
}

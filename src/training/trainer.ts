/**
 * The per-task training protocol shared by every approach (spec §4): plain SGD on shuffled mini-batches,
 * validation objective after each epoch, patience-based learning-rate decay, early stop, and restore of the
 * best-validation snapshot. `Trainer` is the standard loop; an approach with its own (PathNet's evolution of
 * paths, joint training's union of tasks) extends it and keeps its epochs, logging and best-snapshot logic.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../core/errors';
import { Rng } from '../core/rng';
import { SampleSource } from '../data/experiments';
import {
  type EpochLog,
  type Learner,
  type Predictor,
  type TaskContext,
  type TaskData,
  type TaskFitter,
  type TaskLog,
  isLearner,
} from './types';
import type { TrainOptions } from './types';

export class NonFiniteLossError extends UserError {
  override name = 'NonFiniteLossError';
}

/**
 * Patience-based learning-rate schedule of one learner (spec §4.2): after `patience` epochs without a lower
 * validation loss divide lr by `lrFactor` and reset patience; the learner is done once lr < lrMin.
 */
export class LrSchedule {
  lr: number;
  bestLoss = Infinity;
  private patience: number;
  constructor(
    private readonly opts: TrainOptions,
    lr = opts.lr,
  ) {
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

/** The parameters at the lowest validation loss seen so far (early stopping restores them). */
export class BestSnapshot {
  bestLoss = Infinity;
  private values: tf.Tensor[];
  constructor(private readonly learner: Learner) {
    this.values = learner.snapshot();
  }
  /** Keeps the current parameters when `loss` beats the best so far; true when it did. */
  offer(loss: number): boolean {
    if (!(loss < this.bestLoss)) return false;
    this.bestLoss = loss;
    tf.dispose(this.values);
    this.values = this.learner.snapshot();
    return true;
  }
  restore(): void {
    this.learner.restore(this.values);
  }
  dispose(): void {
    tf.dispose(this.values);
    this.values = [];
  }
}

/** The samples of task t alone: its training and validation splits. */
export function taskData(ctx: TaskContext): TaskData {
  const task = ctx.tasks[ctx.t];
  return { train: SampleSource.of(task.train, ctx.t), valid: SampleSource.of(task.valid, ctx.t) };
}

/**
 * Learns one task with the standard loop (spec §4). Batch shuffles are seeded by (seed, t) and the dropout
 * stream is restarted from (seed, t), so a run resumed after task t draws what an uninterrupted one does.
 */
export class Trainer implements TaskFitter {
  readonly log: TaskLog;
  readonly batches: number;
  /** Most epochs the task can take (progress ETA); a loop of its own may raise it. */
  maxEpochs: number;
  private readonly rng: Rng;
  private readonly order: Int32Array;

  constructor(
    readonly learner: Learner,
    readonly ctx: TaskContext,
    readonly data: TaskData = taskData(ctx),
  ) {
    this.log = { task: ctx.t, epochs: [], bestEpoch: 0, trainSeconds: 0 };
    this.rng = new Rng(`shuffle/${ctx.seed}/${ctx.t}`);
    this.order = Int32Array.from({ length: data.train.n }, (_, i) => i);
    this.batches = Math.ceil(data.train.n / ctx.opts.batchSize);
    this.maxEpochs = ctx.opts.nepochs;
  }

  fit(): TaskLog {
    this.learner.model.dropout.reseed(`${this.ctx.seed}/${this.ctx.t}`);
    const best = new BestSnapshot(this.learner);
    try {
      this.loop(best);
      best.restore();
    } finally {
      best.dispose();
    }
    return this.log;
  }

  /** Epochs until lr < lrMin or nepochs (spec §4.2); `fit` then restores the best snapshot. */
  protected loop(best: BestSnapshot): void {
    const schedule = new LrSchedule(this.ctx.opts);
    for (let e = 1; e <= this.ctx.opts.nepochs && !schedule.done; e++) {
      const entry = this.epoch(schedule.lr);
      entry.best = best.offer(entry.validLoss);
      schedule.update(entry.validLoss);
      this.finish(entry);
    }
  }

  /** One epoch at learning rate lr: shuffle, train every batch, then the validation objective. */
  protected epoch(lr: number, label: Partial<Pick<EpochLog, 'path' | 'generation'>> = {}): EpochLog {
    const { learner, ctx, batches } = this;
    const { train, valid } = this.data;
    const { t, tasks, callbacks } = ctx;
    const epochStart = performance.now();
    const epoch = this.log.epochs.length + 1;
    this.rng.shuffle(this.order);
    callbacks.emit('onEpochStart', { t, tasks, epoch, maxEpochs: this.maxEpochs, batches, lr });
    let lossSum = tf.scalar(0);
    let b = 0;
    train.forEachBatch(
      ctx.opts.batchSize,
      (batch, start) => {
        const loss = learner.trainBatch(batch, { epoch, batch: b, batches, start, samples: train.n, lr });
        const previous = lossSum;
        lossSum = tf.tidy(() => tf.add(previous, tf.mul(loss, batch.size)) as tf.Scalar);
        previous.dispose();
        callbacks.emit('onBatchEnd', { batch: ++b, batches, loss });
        loss.dispose();
      },
      this.order,
    );
    const trainLoss = lossSum.dataSync()[0] / train.n;
    lossSum.dispose();
    if (!Number.isFinite(trainLoss)) {
      throw new NonFiniteLossError(
        `the training loss of task ${t + 1} (${tasks[t].name}) became ${trainLoss} in epoch ${epoch} (lr ${lr}). ` +
          'Lower the learning rate (--lr) or the gradient clip (-p clipNorm=...), or check the input data.',
      );
    }
    const validLoss = learner.validationLoss(valid);
    const entry: EpochLog = {
      epoch,
      lr,
      trainLoss,
      validLoss,
      best: false,
      seconds: (performance.now() - epochStart) / 1000,
      ...label,
    };
    this.log.epochs.push(entry);
    return entry;
  }

  /** Records a finished epoch (after the loop marked whether it is the best) and tells the callbacks. */
  protected finish(entry: EpochLog): void {
    if (entry.best) this.log.bestEpoch = entry.epoch;
    const { t, tasks, callbacks } = this.ctx;
    callbacks.emit('onEpochEnd', { t, tasks, log: entry, learner: this.learner, data: this.data });
  }
}

/**
 * Task t of a run, for any approach: beginTask, the learner's trainer (predictors that do not train skip
 * it), endTask. Returns the task's log with its wall time (endTask included: EWC's Fisher, IMM's merge).
 */
export function learnTask(approach: Predictor, ctx: TaskContext): TaskLog {
  const started = performance.now();
  const { t, tasks, callbacks } = ctx;
  approach.beginTask(t, tasks);
  let log: TaskLog;
  if (isLearner(approach)) {
    const fitter = approach.trainer(ctx);
    callbacks.emit('onTaskStart', { t, tasks, approach, data: fitter.data });
    log = fitter.fit();
  } else {
    callbacks.emit('onTaskStart', { t, tasks, approach });
    log = { task: t, epochs: [], bestEpoch: 0, trainSeconds: 0 };
  }
  approach.endTask(t, tasks);
  log.trainSeconds = (performance.now() - started) / 1000;
  return log;
}

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
  type LearnerState,
  type Predictor,
  type ScheduleState,
  type TaskContext,
  type TaskData,
  type TaskFitter,
  type TaskLog,
  type TrainOptions,
  type TrainerState,
  isLearner,
} from './types';

export class NonFiniteLossError extends UserError {
  override name = 'NonFiniteLossError';
}

/**
 * Batches between two reads of the epoch's running loss sum (each read waits for the device): a NaN or infinite
 * loss stops the epoch at most this many batches after it appeared, and its message gives the batch range.
 */
export const LOSS_CHECK_BATCHES = 25;

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
  state(): ScheduleState {
    return { lr: this.lr, bestLoss: finiteOrNull(this.bestLoss), patience: this.patience };
  }
  static fromState(opts: TrainOptions, state: ScheduleState): LrSchedule {
    const s = new LrSchedule(opts, state.lr);
    s.bestLoss = state.bestLoss ?? Infinity;
    s.patience = state.patience;
    return s;
  }
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** The parameters at the lowest validation loss seen so far (early stopping restores them). */
export class BestSnapshot {
  bestLoss = Infinity;
  private values: tf.Tensor[];
  /** The learner's current parameters, or (resuming) saved values and their loss, taken over. */
  constructor(
    private readonly learner: Learner,
    saved?: { values: tf.Tensor[]; bestLoss: number },
  ) {
    this.values = saved ? saved.values : learner.snapshot();
    if (saved) this.bestLoss = saved.bestLoss;
  }
  /** The kept parameters (owned by the snapshot). */
  get kept(): readonly tf.Tensor[] {
    return this.values;
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
 * stream is restarted from (seed, t), so a run resumed after task t draws what an uninterrupted one does;
 * within a task, `state()` after an epoch and `resume()` continue exactly where it was.
 */
export class Trainer implements TaskFitter {
  readonly log: TaskLog;
  readonly batches: number;
  /** Most epochs the task can take (progress ETA); a loop of its own may raise it. */
  maxEpochs: number;
  private rng: Rng;
  private readonly order: Int32Array;
  private best: BestSnapshot | null = null;
  private resumed: TrainerState | null = null;
  /** The standard loop's schedule. */
  private schedule: LrSchedule | null = null;

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

  /** Continue from a mid-task state (the learner's parameters already restored). */
  resume(state: TrainerState): void {
    const { json } = state;
    this.resumed = state;
    this.log.epochs.push(...json.log.epochs);
    this.log.bestEpoch = json.log.bestEpoch;
    this.rng = new Rng('', json.shuffle);
    this.order.set(new Int32Array(Uint8Array.from(Buffer.from(json.order, 'base64')).buffer));
  }

  /** Where the task is now (between epochs), for a checkpoint; the tensors stay owned by the trainer. */
  state(): TrainerState {
    if (!this.best) throw new Error('the trainer has not started');
    return {
      json: {
        log: { ...this.log, epochs: [...this.log.epochs] },
        shuffle: this.rng.state(),
        order: Buffer.from(this.order.buffer, this.order.byteOffset, this.order.byteLength).toString('base64'),
        dropout: this.learner.model.dropout.state(),
        bestLoss: finiteOrNull(this.best.bestLoss),
        loop: this.loopState(),
      },
      tensors: [...this.best.kept],
    };
  }

  fit(): TaskLog {
    const resumed = this.resumed;
    if (resumed) this.learner.model.dropout.setState(resumed.json.dropout);
    else this.learner.model.dropout.reseed(`${this.ctx.seed}/${this.ctx.t}`);
    this.best = new BestSnapshot(
      this.learner,
      resumed
        ? { values: resumed.tensors.map((t) => tf.clone(t)), bestLoss: resumed.json.bestLoss ?? Infinity }
        : undefined,
    );
    try {
      this.loop(this.best, resumed?.json.loop);
      this.best.restore();
    } finally {
      this.best.dispose();
    }
    return this.log;
  }

  /** Epochs until lr < lrMin or nepochs (spec §4.2); `fit` then restores the best snapshot. */
  protected loop(best: BestSnapshot, resumed?: unknown): void {
    const opts = this.ctx.opts;
    const schedule = resumed
      ? LrSchedule.fromState(opts, (resumed as { schedule: ScheduleState }).schedule)
      : new LrSchedule(opts);
    this.schedule = schedule;
    for (let e = this.log.epochs.length + 1; e <= opts.nepochs && !schedule.done; e++) {
      const entry = this.epoch(schedule.lr);
      entry.best = best.offer(entry.validLoss);
      schedule.update(entry.validLoss);
      this.finish(entry);
    }
  }

  /** The loop's position for `state()`; a loop of its own overrides it with what it needs. */
  protected loopState(): unknown {
    return { schedule: this.schedule?.state() };
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
    let checked = 0; // batches whose summed loss was read and finite
    const nonFinite = (what: string, value: number, where: string) =>
      new NonFiniteLossError(
        `the ${what} of task ${t + 1} (${tasks[t].name}) became ${value} in epoch ${epoch}${where} (lr ${lr}); ` +
          'the run stops here, its last checkpoint (if any) from before. Lower the learning rate (--lr) or the gradient clip ' +
          '(-p clipNorm=...), or check the input data.',
      );
    const check = () => {
      const sum = lossSum.dataSync()[0];
      if (!Number.isFinite(sum))
        throw nonFinite(
          'training loss',
          sum,
          `, batch${b - checked > 1 ? `es ${checked + 1}-${b}` : ` ${b}`} of ${batches}`,
        );
      checked = b;
      return sum;
    };
    let trainLoss: number;
    try {
      train.forEachBatch(
        ctx.opts.batchSize,
        (batch, start) => {
          const loss = learner.trainBatch(batch, { epoch, batch: b, batches, start, samples: train.n, lr });
          const previous = lossSum;
          lossSum = tf.tidy(() => tf.add(previous, tf.mul(loss, batch.size)) as tf.Scalar);
          previous.dispose();
          callbacks.emit('onBatchEnd', { batch: ++b, batches, loss });
          loss.dispose();
          if (b % LOSS_CHECK_BATCHES === 0) check();
        },
        this.order,
      );
      trainLoss = check() / train.n;
    } finally {
      lossSum.dispose();
    }
    const validLoss = learner.validationLoss(valid, ctx.opts.batchSize);
    // the last update can leave non-finite weights behind a finite training loss: they never reach a checkpoint
    if (!Number.isFinite(validLoss)) throw nonFinite('validation loss', validLoss, ' (after its last batch)');
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

  /**
   * Records a finished epoch (after the loop marked whether it is the best and moved its own position on),
   * tells the callbacks, and offers the run a mid-task checkpoint.
   */
  protected finish(entry: EpochLog): void {
    if (entry.best) this.log.bestEpoch = entry.epoch;
    const { t, tasks, callbacks } = this.ctx;
    callbacks.emit('onEpochEnd', { t, tasks, log: entry, learner: this.learner, data: this.data });
    this.ctx.onEpochEnd?.(this);
  }
}

/** A task interrupted in the middle: the learner's state and its trainer's, from a checkpoint. */
export interface TaskResume {
  learner: LearnerState;
  trainer: TrainerState;
}

/**
 * Task t of a run, for any approach: beginTask, the learner's trainer (predictors that do not train skip
 * it), endTask. Returns the task's log with its wall time (endTask included: EWC's Fisher, IMM's merge).
 * With `resume`, the task continues from a mid-task checkpoint (after beginTask, which may reset weights).
 */
export function learnTask(approach: Predictor, ctx: TaskContext, resume?: TaskResume): TaskLog {
  const started = performance.now();
  const { t, tasks, callbacks } = ctx;
  approach.beginTask(t, tasks);
  let log: TaskLog;
  if (isLearner(approach)) {
    if (resume) approach.loadState(resume.learner);
    const fitter = approach.trainer(ctx);
    if (resume) fitter.resume(resume.trainer);
    callbacks.emit('onTaskStart', {
      t,
      tasks,
      approach,
      data: fitter.data,
      resumedAfterEpoch: resume ? resume.trainer.json.log.epochs.length : 0,
    });
    log = fitter.fit();
  } else {
    callbacks.emit('onTaskStart', { t, tasks, approach, resumedAfterEpoch: 0 });
    log = { task: t, epochs: [], bestEpoch: 0, trainSeconds: 0 };
  }
  approach.endTask(t, tasks);
  // a resumed task also counts the epochs it had trained before the interruption
  const before = resume ? resume.trainer.json.log.epochs.reduce((a, e) => a + e.seconds, 0) : 0;
  log.trainSeconds = (performance.now() - started) / 1000 + before;
  return log;
}

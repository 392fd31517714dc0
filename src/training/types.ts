/**
 * What the training pipeline talks to. Every approach is a `Predictor` (it answers for every task it has
 * been shown); those that train are `Learner`s, driven one optimisation step at a time by a trainer
 * (./trainer.ts) that tells each step where it is in the epoch.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Hyper } from '../core/params';
import type { Batch, SampleSource, Task } from '../data/experiments';
import type { ModelDescription } from '../nets/config';
import type { LayerSpec } from '../nets/geometry';
import type { Model } from '../nets/network';
import type { RngState } from '../core/rng';
import type { CallbackList } from './callbacks';

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

/** The common protocol of spec §4. */
export const TRAIN_DEFAULTS: Readonly<TrainOptions> = {
  nepochs: 200,
  lr: 0.05,
  lrMin: 1e-4,
  lrFactor: 3,
  patience: 5,
  batchSize: 64,
};

/** Where an optimisation step is: HAT's s schedule reads it (both of its forms, spec §2.4). */
export interface StepPosition {
  /** Epoch of the task, from 1. */
  epoch: number;
  /** Batch of the epoch, from 0. */
  batch: number;
  /** Batches in the epoch (the last one may be smaller). */
  batches: number;
  /** Index of the batch's first sample within the epoch, and the epoch's number of samples. */
  start: number;
  samples: number;
  lr: number;
}

export interface Evaluation {
  accuracy: number;
  /** Mean cross-entropy of the task's head. */
  loss: number;
}

/** Tensors (saved as float32) and JSON that describe an approach between tasks (checkpoints, saved models). */
export interface LearnerState {
  tensors: Record<string, tf.Tensor>;
  json: unknown;
}

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

/** The samples a learner trains and validates on while learning a task. */
export interface TaskData {
  train: SampleSource;
  valid: SampleSource;
}

/** Everything the trainer of one task needs to know. */
export interface TaskContext {
  t: number;
  tasks: Task[];
  opts: TrainOptions;
  /** Run seed: batch shuffles and dropout are seeded by (seed, t). */
  seed: number;
  callbacks: CallbackList;
  /** Called after every epoch with the task's trainer (the run saves a mid-task checkpoint when one is due). */
  onEpochEnd?: (trainer: TaskFitter) => void;
}

/** An LrSchedule in a checkpoint (JSON: an infinite best loss is null). */
export interface ScheduleState {
  lr: number;
  bestLoss: number | null;
  patience: number;
}

/** Where a trainer is within its task (a mid-task checkpoint): JSON, and the best snapshot's tensors. */
export interface TrainerState {
  json: {
    log: TaskLog;
    /** Batch shuffling: the generator, and the order it last produced (each epoch reshuffles it). */
    shuffle: RngState;
    order: string;
    dropout: RngState;
    bestLoss: number | null;
    /** The loop's own position (the standard loop's schedule; PathNet's generation, path, paths). */
    loop: unknown;
  };
  tensors: tf.Tensor[];
}

/** Learns one task (the standard loop of spec §4, or an approach's own, e.g. PathNet's evolution). */
export interface TaskFitter {
  readonly data: TaskData;
  fit(): TaskLog;
  /** Where the task is, between epochs (a mid-task checkpoint), and continuing from there. */
  state(): TrainerState;
  resume(state: TrainerState): void;
}

/** Any approach: predicts every task it has been shown. */
export interface Predictor {
  readonly id: string;
  /** Parameters in force (recorded in the result file). */
  readonly hyper: Hyper;
  beginTask(t: number, tasks: Task[]): void;
  endTask(t: number, tasks: Task[]): void;
  /** Accuracy and loss of head `task` on a task's samples. */
  evaluate(source: SampleSource, task: number): Evaluation;
  /** Class probabilities of task `task` for preprocessed inputs x (eval mode): [batch, classes]. */
  predict(x: tf.Tensor, task: number): tf.Tensor2D;
  /** The trained model for the result file (null when there is none). */
  describe(): ModelDescription | null;
  /** Approach-specific summary for the result file (e.g. HAT's task gates). */
  summary(): Record<string, unknown>;
  /** Everything needed to go on after a finished task (network variables included). */
  state(): LearnerState;
  /**
   * Grows the approach by a task it was not built for (a head of `classes` classes, HAT's embedding rows) and
   * returns its index; absent for approaches whose structure is fixed by their number of tasks (PNN, PathNet).
   */
  addTask?(classes: number): number;
  loadState(state: LearnerState): void;
  dispose(): void;
}

/** An approach that trains: one optimisation step at a time, with snapshots for early stopping. */
export interface Learner extends Predictor {
  readonly model: Model;
  /** The loop that learns task `ctx.t`. */
  trainer(ctx: TaskContext): TaskFitter;
  /** One optimisation step; returns the batch's training objective. */
  trainBatch(batch: Batch, at: StepPosition): tf.Scalar;
  /**
   * The full training objective on a sample source in eval mode (early stopping uses it): the mean over samples
   * of each batch's objective; `trainBatchSize` for an objective whose value depends on the batch (LFL).
   */
  validationLoss(source: SampleSource, trainBatchSize?: number): number;
  snapshot(): tf.Tensor[];
  restore(snapshot: tf.Tensor[]): void;
}

export function isLearner(p: Predictor): p is Learner {
  return typeof (p as Partial<Learner>).trainBatch === 'function';
}

/**
 * An approach whose trunk units are gated per task (HAT): it reports its masks, so usage statistics and the
 * monitoring logs ask it instead of knowing the approach.
 */
export interface ReportsMasks {
  /** The gated layers, in order. */
  readonly gatedLayers: readonly LayerSpec[];
  /** Each finished task's own gates σ(smax·e_t), per layer. */
  readonly taskGates: readonly number[][][];
  /** Cumulative attention A before task t (max of the earlier tasks' gates; zeros before the first), per layer. */
  cumulativeBefore(t: number): number[][];
  /** Task t's gates now (at s = smax) and the capacity regulariser R they give. */
  currentGates(t: number): { gates: number[][]; regulariser: number };
}

export function reportsMasks(p: Predictor): p is Predictor & ReportsMasks {
  const r = p as Partial<ReportsMasks>;
  return Array.isArray(r.gatedLayers) && typeof r.currentGates === 'function';
}

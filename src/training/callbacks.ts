/**
 * Observers of the one training pipeline, in the spirit of tfjs-layers' callbacks and Avalanche's plugins:
 * the progress display, HAT's usage statistics and the monitoring logs behind Figs. 5-7 are callbacks on
 * `runExperiment` (runs/run.ts), not parallel pipelines.
 *
 * Events, in order: runStart; per task: taskStart, then per epoch epochStart, batchEnd (every batch) and
 * epochEnd; taskEnd (after the learnt tasks are tested); runEnd. A resumed run starts at the first
 * unfinished task. A callback with a `key` writes what `extras()` returns into the result file under
 * `extras[key]` whenever the file is written (after every task), and gets it back through `resume()` when
 * an interrupted run continues.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Experiment, Task } from '../data/experiments';
import type { EpochLog, Learner, Predictor, TaskData, TaskLog } from './types';

export interface RunStartEvent {
  experiment: Experiment;
  approach: Predictor;
  /** First task to learn: 0, or the number of tasks a resumed run had finished. */
  firstTask: number;
  /** One line describing the run (experiment, tag, seed, tasks, backend). */
  header: string;
}

interface TaskPosition {
  /** Task index in the sequence (0-based) and the sequence. */
  t: number;
  tasks: Task[];
}

export interface TaskStartEvent extends TaskPosition {
  approach: Predictor;
  /** The samples a learner trains and validates on (absent for predictors that do not train). */
  data?: TaskData;
  /** Epochs already trained before an interruption (a resumed task); 0 for a task that starts afresh. */
  resumedAfterEpoch: number;
}

export interface EpochStartEvent extends TaskPosition {
  epoch: number;
  /** Most epochs the task can take (for an ETA). */
  maxEpochs: number;
  batches: number;
  lr: number;
}

export interface BatchEndEvent {
  /** Batches done in this epoch (1-based). */
  batch: number;
  batches: number;
  /** The batch's training objective; reading it waits for the device, so read it only when needed. */
  loss: tf.Scalar;
}

export interface EpochEndEvent extends TaskPosition {
  log: EpochLog;
  learner: Learner;
  data: TaskData;
}

export interface TaskEndEvent extends TaskPosition {
  log: TaskLog;
  approach: Predictor;
  /** Row t of the accuracy and loss matrices: every task learnt so far, tested. */
  accuracy: number[];
  loss: number[];
}

export interface RunEndEvent {
  approach: Predictor;
}

export interface Callback {
  /** Where this callback's `extras()` go in the result file (`extras[key]`). */
  readonly key?: string;
  onRunStart?(e: RunStartEvent): void;
  onTaskStart?(e: TaskStartEvent): void;
  onEpochStart?(e: EpochStartEvent): void;
  onBatchEnd?(e: BatchEndEvent): void;
  onEpochEnd?(e: EpochEndEvent): void;
  onTaskEnd?(e: TaskEndEvent): void;
  onRunEnd?(e: RunEndEvent): void;
  /** What to record in the result file so far (JSON). */
  extras?(): unknown;
  /** Continue from the extras an interrupted run wrote. */
  resume?(extras: unknown): void;
  /** Release anything held (called once, also when the run fails). */
  close?(): void;
}

type EventName = 'onRunStart' | 'onTaskStart' | 'onEpochStart' | 'onBatchEnd' | 'onEpochEnd' | 'onTaskEnd' | 'onRunEnd';
type EventOf<K extends EventName> = Parameters<NonNullable<Callback[K]>>[0];

/** Several callbacks as one: events go to each in order. */
export class CallbackList {
  readonly callbacks: Callback[];
  constructor(callbacks: readonly Callback[] = []) {
    this.callbacks = [...callbacks];
    const keys = this.callbacks.flatMap((c) => (c.key ? [c.key] : []));
    const twice = keys.find((k, i) => keys.indexOf(k) !== i);
    if (twice) throw new Error(`two callbacks write the result file's extras.${twice}`);
  }

  emit<K extends EventName>(event: K, e: EventOf<K>): void {
    for (const c of this.callbacks) (c[event] as ((e: EventOf<K>) => void) | undefined)?.call(c, e);
  }

  /** Does any callback listen to this event? (the trainer skips building events nobody reads) */
  listens(event: EventName): boolean {
    return this.callbacks.some((c) => c[event] !== undefined);
  }

  extras(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const c of this.callbacks) if (c.key && c.extras) out[c.key] = c.extras();
    return out;
  }

  resume(extras: Record<string, unknown> | undefined): void {
    for (const c of this.callbacks) if (c.key && c.resume && extras && c.key in extras) c.resume(extras[c.key]);
  }

  close(): void {
    for (const c of this.callbacks) c.close?.();
  }
}

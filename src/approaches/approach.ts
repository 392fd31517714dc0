/**
 * The interface every continual-learning approach implements, and the shared SGD machinery.
 *
 * The training loop (../train.ts) only talks to `Approach`: it asks for the samples of a task, runs
 * `trainBatch` over shuffled mini-batches, asks for the validation objective after each epoch, keeps the best
 * snapshot, and calls `endTask`. An approach built on a network extends `NetworkApproach` and overrides the
 * hooks it needs (its objective, which variables train, how gradients are conditioned, what happens
 * between tasks).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Batch, SampleSource, Task } from '../data/experiments';
import { Model, Network, localName } from '../nets/network';
import type { EpochRunner } from '../train';

export type HyperValue = number | string | boolean;
export type Hyper = Record<string, HyperValue>;

export interface Evaluation {
  accuracy: number;
  /** Mean cross-entropy of the task's head. */
  loss: number;
}

export interface Approach {
  readonly id: string;
  /** Hyperparameters in force (recorded in the result file). */
  readonly hyper: Hyper;
  /** Whether the approach trains at all (`random` does not). */
  readonly trains: boolean;
  /** The approach's trainable model (a Network, PathNet's modules, PNN's columns), null for `random`. */
  readonly model: Model | null;
  /** Samples to train and validate on while learning task t (joint: the union of tasks 0..t). */
  sources(t: number, tasks: Task[]): { train: SampleSource; valid: SampleSource };
  beginTask(t: number, tasks: Task[]): void;
  /**
   * Own task-level loop (PathNet's path evolution), using the runner's epochs; without it the standard
   * loop of spec §4 runs. Must leave the model in the state to keep for the task.
   */
  learnTask?(runner: EpochRunner): void;
  /** Told the number of batches of an epoch before it starts (HAT's paper-form s schedule needs it). */
  setBatchesPerEpoch?(batches: number): void;
  /**
   * One optimisation step at learning rate `lr`; `progress` in [0,1) is the position of the batch's first
   * sample within the epoch (HAT anneals s with it). Returns the batch's training objective.
   */
  trainBatch(batch: Batch, lr: number, progress: number): tf.Scalar;
  /** The full training objective on a sample source in eval mode (early stopping uses it). */
  validationLoss(source: SampleSource): number;
  endTask(t: number, tasks: Task[]): void;
  /** Accuracy and loss of head `task` on a task's test samples. */
  evaluate(source: SampleSource, task: number): Evaluation;
  snapshot(): tf.Tensor[];
  restore(snapshot: tf.Tensor[]): void;
  /** Approach-specific summary for the result file (e.g. HAT's mask statistics). */
  summary(): Record<string, unknown>;
  /** Everything a checkpoint needs to resume after a finished task (network variables included). */
  checkpointState(): ApproachState;
  loadCheckpointState(state: ApproachState): void;
  dispose(): void;
}

/** Tensors (saved as float32) and JSON that describe an approach between tasks. */
export interface ApproachState {
  tensors: Record<string, tf.Tensor>;
  json: unknown;
}

export const EVAL_BATCH = 512;

/** Mean softmax cross-entropy of int labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels, logits.shape[1]), tf.logSoftmax(logits)), 1))) as tf.Scalar);
}

/** Accuracy and mean cross-entropy of the logits a model gives a sample source's inputs (in batches of EVAL_BATCH). */
export function evaluateLogits(source: SampleSource, logitsOf: (x: tf.Tensor) => tf.Tensor2D): Evaluation {
  let correct = 0;
  let loss = 0;
  for (const batch of source.batches(EVAL_BATCH)) {
    const [c, l] = tf.tidy(() => {
      const logits = logitsOf(batch.x);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.y), 'int32'));
      return [hits, tf.mul(crossEntropy(logits, batch.y), batch.size)];
    });
    correct += c.dataSync()[0];
    loss += l.dataSync()[0];
    tf.dispose([c, l, batch.x, batch.y]);
  }
  return { accuracy: correct / source.n, loss: loss / source.n };
}

/** Sum of squares of all gradients, square-rooted; scale them by max/(norm+1e-6) when above max (PyTorch clip_grad_norm). */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): tf.Tensor[] {
  const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
  const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
  return grads.map((g) => tf.mul(g, scale));
}

export interface NetworkApproachOptions {
  /** Global gradient-norm clip (spec §5: 10000 for SGD-like approaches). */
  clipNorm?: number;
}

/**
 * An approach trained with plain SGD on some model: owns the generic step (gradients of the objective
 * w.r.t. the trainable variables, conditioning, global-norm clipping, update), validation, evaluation,
 * snapshots and checkpoints. Subclasses say what trains, what the objective is and how a task is predicted.
 */
export abstract class SgdApproach<M extends Model = Model> implements Approach {
  abstract readonly id: string;
  readonly trains = true;
  readonly clipNorm: number;
  hyper: Hyper = {};
  /** The task being learnt. */
  protected task = 0;

  constructor(readonly model: M, opts: NetworkApproachOptions = {}) {
    this.clipNorm = opts.clipNorm ?? 10000;
  }

  sources(t: number, tasks: Task[]): { train: SampleSource; valid: SampleSource } {
    return { train: SampleSource.of(tasks[t].train, t), valid: SampleSource.of(tasks[t].valid, t) };
  }

  beginTask(t: number, _tasks: Task[]): void {
    this.task = t;
  }
  endTask(_t: number, _tasks: Task[]): void {}

  /** Variables the optimiser updates while learning the current task. */
  protected abstract trainableVariables(batch: Batch): tf.Variable[];
  /** Training objective of a batch (CE plus the approach's regulariser); `training` = dropout on. */
  protected abstract objective(batch: Batch, training: boolean): tf.Scalar;
  /** Logits of task `task` for inputs x, in eval mode. */
  protected abstract evalLogits(x: tf.Tensor, task: number): tf.Tensor2D;

  /** Change gradients before clipping (HAT masks them); default: unchanged. */
  protected conditionGradients(grads: tf.NamedTensorMap, _progress: number): tf.NamedTensorMap {
    return grads;
  }

  /** Runs after the parameter update (HAT clamps its embeddings). */
  protected afterStep(): void {}

  trainBatch(batch: Batch, lr: number, progress: number): tf.Scalar {
    return tf.tidy(() => {
      const vars = this.trainableVariables(batch);
      const { value, grads } = tf.variableGrads(() => this.objective(batch, true), vars);
      const conditioned = this.conditionGradients(grads, progress);
      const names = vars.map((v) => v.name);
      const clipped = clipByGlobalNorm(names.map((n) => conditioned[n]), this.clipNorm);
      vars.forEach((v, i) => v.assign(tf.sub(v, tf.mul(clipped[i], lr))));
      this.afterStep();
      return value;
    });
  }

  validationLoss(source: SampleSource): number {
    let total = 0;
    for (const batch of source.batches(EVAL_BATCH)) {
      const loss = tf.tidy(() => this.objective(batch, false));
      total += loss.dataSync()[0] * batch.size;
      tf.dispose([loss, batch.x, batch.y]);
    }
    return total / source.n;
  }

  evaluate(source: SampleSource, task: number): Evaluation {
    return evaluateLogits(source, (x) => this.evalLogits(x, task));
  }

  snapshot(): tf.Tensor[] {
    return this.model.variables().map((v) => tf.clone(v));
  }
  restore(snapshot: tf.Tensor[]): void {
    this.model.variables().forEach((v, i) => v.assign(snapshot[i]));
  }
  summary(): Record<string, unknown> {
    return {};
  }

  /** State beyond the model's variables (frozen copies, Fisher diagonals, paths...) for checkpoints. */
  protected extraState(): ApproachState {
    return { tensors: {}, json: null };
  }
  protected loadExtraState(_state: ApproachState): void {}

  checkpointState(): ApproachState {
    const tensors: Record<string, tf.Tensor> = {};
    for (const v of this.model.variables()) tensors[this.localName(v)] = v;
    const extra = this.extraState();
    for (const [k, t] of Object.entries(extra.tensors)) tensors[`state/${k}`] = t;
    return { tensors, json: extra.json };
  }
  loadCheckpointState(state: ApproachState): void {
    for (const v of this.model.variables()) {
      const t = state.tensors[this.localName(v)];
      if (!t) throw new Error(`checkpoint has no value for ${this.localName(v)}`);
      v.assign(t);
    }
    const extra: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(state.tensors)) if (k.startsWith('state/')) extra[k.slice(6)] = t;
    this.loadExtraState({ tensors: extra, json: state.json });
  }
  /** Variable name without the model's unique prefix. */
  protected localName(v: tf.Variable): string {
    return localName(this.model, v);
  }
  dispose(): void {
    this.model.dispose();
  }
}

/** An approach that trains a multi-head `Network` (spec §3.1/3.2) with plain SGD. Subclasses change the hooks. */
export abstract class NetworkApproach extends SgdApproach<Network> {
  constructor(net: Network, opts: NetworkApproachOptions = {}) {
    super(net, opts);
  }

  get net(): Network {
    return this.model;
  }

  protected trainableVariables(batch: Batch): tf.Variable[] {
    return [...this.net.trunkVariables(), ...this.headsOf(batch).flatMap((t) => [this.net.heads[t].weight, this.net.heads[t].bias])];
  }

  protected headsOf(batch: Batch): number[] {
    return batch.task >= 0 ? [batch.task] : [...new Set(batch.tasks)].sort((a, b) => a - b);
  }

  /** Cross-entropy of every sample on its own task's head (batch mean). */
  protected taskLoss(h: tf.Tensor2D, batch: Batch): tf.Scalar {
    if (batch.task >= 0) return crossEntropy(this.net.logits(h, batch.task), batch.y);
    // Mixed batch (joint training): each sample's CE on its own head, averaged over the whole batch.
    const parts: tf.Scalar[] = [];
    for (const t of this.headsOf(batch)) {
      const rows: number[] = [];
      batch.tasks.forEach((u, i) => u === t && rows.push(i));
      const idx = tf.tensor1d(rows, 'int32');
      parts.push(tf.mul(crossEntropy(this.net.logits(tf.gather(h, idx), t), tf.gather(batch.y, idx) as tf.Tensor1D), rows.length / batch.size));
    }
    return tf.addN(parts) as tf.Scalar;
  }

  protected objective(batch: Batch, training: boolean): tf.Scalar {
    const { h } = this.net.features(batch.x, { training });
    return this.taskLoss(h, batch);
  }

  /** Trunk features for evaluation of `task` (HAT applies the task's gates at s = smax). */
  protected evalFeatures(x: tf.Tensor, _task: number): tf.Tensor2D {
    return this.net.features(x, { training: false }).h;
  }

  protected evalLogits(x: tf.Tensor, task: number): tf.Tensor2D {
    return this.net.logits(this.evalFeatures(x, task), task);
  }
}

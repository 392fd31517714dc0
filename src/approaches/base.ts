/**
 * The shared SGD machinery of the approaches that train (spec §4): the step (gradients of the objective
 * w.r.t. the trainable variables, conditioning, global-norm clipping, update), validation, evaluation,
 * snapshots and state. A subclass says what trains, what the objective is and how a task is predicted; an
 * approach on the multi-head `Network` extends `NetworkLearner` and overrides the hooks it needs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedMaskedSgdUpdate, fusedSgdUpdate } from '../backend/fused-kernels';
import { halfSumOfSquares } from '../backend/native-ops';
import type { Hyper } from '../core/params';
import { type Batch, type SampleSource, type Task } from '../data/experiments';
import type { ModelDescription } from '../nets/config';
import { type Model, type Network, localName } from '../nets/network';
import { Trainer } from '../training/trainer';
import type { Evaluation, Learner, LearnerState, StepPosition, TaskContext, TaskFitter } from '../training/types';

/** Evaluation batch size: large batches without gradients. */
export const EVAL_BATCH = 512;

/**
 * Mean softmax cross-entropy of int labels, −mean(Σ oneHot·logSoftmax(logits)), as tfjs's ops compute it. Its
 * gradient is taped as one op: the values of tfjs's chain of gradients (logSoftmax's own, then those of Mul,
 * Sum, Mean and Neg) bit for bit, in 7 TensorFlow ops instead of 12 and without the chain's tensors of ones.
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const n = logits.shape[0];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const oneHot = tf.cast(tf.oneHot(labels, z.shape[1]), 'float32');
    const shifted = tf.sub(z, tf.max(z, 1, true));
    const logSoftmax = tf.sub(shifted, tf.log(tf.sum(tf.exp(shifted), 1, true)));
    save([oneHot, logSoftmax]);
    return {
      value: tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logSoftmax), 1))),
      gradFunc: (dy: tf.Tensor, [hot, ls]: tf.Tensor[]) => {
        // the chain's −dy, then (·1)/n per row (Mean), ·1 per class (Sum), ·oneHot (Mul): the products by 1 are exact
        const g = tf.mul(hot, tf.div(tf.neg(dy), n));
        // logSoftmax's gradient, as tfjs's: g − Σg · exp(logSoftmax)
        return tf.sub(g, tf.mul(tf.sum(g, 1, true), tf.exp(ls)));
      },
    };
  });
  return tf.tidy(() => f(logits) as tf.Scalar);
}

/** Accuracy and mean cross-entropy of the logits a model gives a sample source's inputs (in batches of EVAL_BATCH). */
export function evaluateLogits(source: SampleSource, logitsOf: (x: tf.Tensor) => tf.Tensor2D): Evaluation {
  let correct = 0;
  let loss = 0;
  source.forEachBatch(EVAL_BATCH, (batch) => {
    const [c, l] = tf.tidy((): [tf.Tensor, tf.Tensor] => {
      const logits = logitsOf(batch.x);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), batch.y), 'int32'));
      return [hits, tf.mul(crossEntropy(logits, batch.y), batch.size)];
    });
    correct += c.dataSync()[0];
    loss += l.dataSync()[0];
    tf.dispose([c, l]);
  });
  return { accuracy: correct / source.n, loss: loss / source.n };
}

/**
 * The factor PyTorch's clip_grad_norm scales all gradients by: max/(‖g‖₂ + 1e-6) when the global norm ‖g‖₂
 * exceeds max, else 1.
 */
export function clipFactor(grads: tf.Tensor[], maxNorm: number): tf.Scalar {
  // Σ‖g‖² as 2·Σ(‖g‖²/2): scaling by 2 is exact, so this is the sum of the squares, with one multiplication
  const norm = tf.sqrt(tf.mul(tf.addN(grads.map(halfSumOfSquares)), 2));
  return tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
}

/**
 * The SGD update v ← v − (g·m)·clipFactor·lr of every variable, m its gradient mask when it has one (values in
 * [0, 1]: HAT's). The clip factor is that of the masked gradients (PyTorch's clip_grad_norm after the masks).
 *
 * With the fused kernels every variable's update is first computed with a factor of 1, in one pass that reads
 * v, g and m and also sums g². If the norm of the unmasked gradients is below half the clip norm, the clip
 * factor is exactly 1 (masks can only shrink the norm, and no float32 rounding of it comes near a factor of
 * 2), so those updates are the ones TensorFlow's ops would give, and they are kept: the masked gradients and
 * their norm are never stored. Otherwise (a large gradient, or no fused kernels) they are dropped and
 * TensorFlow's ops run as written below. Same bits either way.
 */
export function sgdUpdate(
  vars: readonly tf.Variable[],
  grads: readonly tf.Tensor[],
  masks: Readonly<Record<string, tf.Tensor>>,
  clipNorm: number,
  lr: number,
): void {
  const step = tf.scalar(lr);
  const fast = vars.map((v, i) => {
    const m = masks[v.name];
    return m ? fusedMaskedSgdUpdate(v, grads[i], m, step) : fusedSgdUpdate(v, grads[i], step);
  });
  if (fast.every((f) => f !== null)) {
    const sums = fast.map((f) => f![1]);
    const sumOfSquares = tf.addN(sums).dataSync()[0];
    if (Math.sqrt(sumOfSquares) < clipNorm / 2) {
      vars.forEach((v, i) => v.assign(fast[i]![0]));
      return;
    }
  }
  tf.dispose(fast.flatMap((f) => f ?? []));
  const g = vars.map((v, i) => (masks[v.name] ? tf.mul(grads[i], masks[v.name]) : grads[i]));
  // clipping and the learning rate as one scalar: one pass over each gradient for the update
  const clipped = tf.mul(clipFactor(g, clipNorm), lr) as tf.Scalar;
  vars.forEach((v, i) => {
    const f = fusedSgdUpdate(v, g[i], clipped);
    v.assign(f ? f[0] : tf.sub(v, tf.mul(g[i], clipped)));
  });
}

/** An approach trained with plain SGD on some model (a Network, PathNet's modules, PNN's columns). */
export abstract class SgdLearner<M extends Model = Model> implements Learner {
  abstract readonly id: string;
  abstract readonly hyper: Hyper;
  /** The task being learnt. */
  protected task = 0;

  constructor(
    readonly model: M,
    /** Global gradient-norm clip (spec §5, per approach). */
    readonly clipNorm: number,
  ) {}

  /** The standard loop of spec §4; approaches with a loop of their own return a subclass of Trainer. */
  trainer(ctx: TaskContext): TaskFitter {
    return new Trainer(this, ctx);
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

  /** Change gradients before clipping (HAT compensates its embeddings' gradients); default: unchanged. */
  protected conditionGradients(grads: tf.NamedTensorMap, _at: StepPosition): tf.NamedTensorMap {
    return grads;
  }

  /**
   * Multipliers in [0, 1] of the gradients of some variables, by variable name, applied before clipping (HAT's
   * weight-gradient masks; see sgdUpdate); default: none.
   */
  protected gradientMasks(): Readonly<Record<string, tf.Tensor>> {
    return {};
  }

  /** Runs after the parameter update (HAT clamps its embeddings). */
  protected afterStep(): void {}

  /** Called before the step's gradients are taken (HAT sets s from the position). */
  protected beforeStep(_at: StepPosition): void {}

  /**
   * A term of the objective that does not depend on the data and whose gradient is known in closed form (EWC's
   * and IMM's quadratic anchor): its value, and its gradient for those of `vars` it involves. Added to the
   * data term's value and gradients instead of being differentiated on the tape. Null when there is none.
   */
  protected analyticTerm(_vars: readonly tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } | null {
    return null;
  }

  trainBatch(batch: Batch, at: StepPosition): tf.Scalar {
    this.beforeStep(at);
    return tf.tidy(() => {
      const vars = this.trainableVariables(batch);
      const { value, grads } = tf.variableGrads(() => this.objective(batch, true), vars);
      const term = this.analyticTerm(vars);
      if (term) for (const [name, g] of Object.entries(term.grads)) grads[name] = tf.add(grads[name], g);
      const conditioned = this.conditionGradients(grads, at);
      sgdUpdate(
        vars,
        vars.map((v) => conditioned[v.name]),
        this.gradientMasks(),
        this.clipNorm,
        at.lr,
      );
      this.afterStep();
      return term ? (tf.add(value, term.value) as tf.Scalar) : value;
    });
  }

  /**
   * Whether the objective sums a term over the batch instead of averaging it (LFL's feature distance), so that
   * its value depends on the batch size: validation then uses the training batch size, as the reference.
   */
  protected readonly sumsOverBatch: boolean = false;

  validationLoss(source: SampleSource, trainBatchSize?: number): number {
    let total = 0;
    const size = this.sumsOverBatch && trainBatchSize ? trainBatchSize : EVAL_BATCH;
    source.forEachBatch(size, (batch) => {
      const loss = tf.tidy(() => this.objective(batch, false));
      total += loss.dataSync()[0] * batch.size;
      loss.dispose();
    });
    const term = tf.tidy(() => this.analyticTerm([])?.value);
    const extra = term ? term.dataSync()[0] : 0;
    term?.dispose();
    return total / source.n + extra;
  }

  evaluate(source: SampleSource, task: number): Evaluation {
    return evaluateLogits(source, (x) => this.evalLogits(x, task));
  }

  predict(x: tf.Tensor, task: number): tf.Tensor2D {
    return tf.tidy(() => tf.softmax(this.evalLogits(x, task)));
  }

  snapshot(): tf.Tensor[] {
    return this.model.variables().map((v) => tf.clone(v));
  }
  restore(snapshot: tf.Tensor[]): void {
    this.model.variables().forEach((v, i) => v.assign(snapshot[i]));
  }
  describe(): ModelDescription {
    return this.model.describe();
  }
  summary(): Record<string, unknown> {
    return {};
  }

  /** State beyond the model's variables (frozen copies, Fisher diagonals, paths...). */
  protected extraState(): LearnerState {
    return { tensors: {}, json: null };
  }
  protected loadExtraState(_state: LearnerState): void {}

  state(): LearnerState {
    const tensors: Record<string, tf.Tensor> = {};
    for (const v of this.model.variables()) tensors[this.localName(v)] = v;
    const extra = this.extraState();
    for (const [k, t] of Object.entries(extra.tensors)) tensors[`state/${k}`] = t;
    return { tensors, json: extra.json };
  }
  loadState(state: LearnerState): void {
    for (const v of this.model.variables()) {
      const t = state.tensors[this.localName(v)];
      if (!t) throw new Error(`the saved state has no value for ${this.localName(v)}`);
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
export abstract class NetworkLearner extends SgdLearner<Network> {
  get net(): Network {
    return this.model;
  }

  addTask(classes: number): number {
    const t = this.net.addTask(classes);
    this.afterAddTask(t);
    return t;
  }

  /** State kept per parameter (anchors, initial values) learns of the new head's variables here. */
  protected afterAddTask(_t: number): void {}

  protected trainableVariables(batch: Batch): tf.Variable[] {
    return [
      ...this.net.trunkVariables(),
      ...this.headsOf(batch).flatMap((t) => [this.net.heads[t].weight, this.net.heads[t].bias]),
    ];
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
      parts.push(
        tf.mul(
          crossEntropy(this.net.logits(tf.gather(h, idx), t), tf.gather(batch.y, idx) as tf.Tensor1D),
          rows.length / batch.size,
        ),
      );
    }
    return tf.addN(parts) as tf.Scalar;
  }

  protected objective(batch: Batch, training: boolean): tf.Scalar {
    const { h } = this.net.features(batch.x, { training });
    return this.taskLoss(h, batch);
  }

  /** Trunk features for evaluation of `task` (HAT applies the task's gates). */
  protected evalFeatures(x: tf.Tensor, _task: number): tf.Tensor2D {
    return this.net.features(x, { training: false }).h;
  }

  protected evalLogits(x: tf.Tensor, task: number): tf.Tensor2D {
    return this.net.logits(this.evalFeatures(x, task), task);
  }
}

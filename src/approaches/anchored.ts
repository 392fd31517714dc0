/**
 * Approaches that anchor the parameters to their values after the previous task with a quadratic penalty
 * (spec §5): EWC (weighted by the Fisher diagonal) and IMM's L2-transfer (unweighted). The penalty covers
 * every weight and bias of trunk and heads, as the reference's loop over `named_parameters()` does.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SampleSource, type Task } from '../data/experiments';
import { type Network } from '../nets/network';
import type { LearnerState } from '../training/types';
import { NetworkLearner } from './base';
import { fisherDiagonal, quadraticAnchor } from './fisher';

export abstract class AnchoredLearner extends NetworkLearner {
  /** θ_prev: parameter values the penalty pulls towards (null while learning the first task). */
  protected anchor: tf.Tensor[] | null = null;
  /** Per-parameter weights of the penalty (EWC: Fisher); null = 1. */
  protected anchorWeights: tf.Tensor[] | null = null;

  constructor(
    net: Network,
    /** Weight of the quadratic penalty (EWC's lambda, IMM's r or lambda). */
    readonly strength: number,
    clipNorm: number,
  ) {
    super(net, clipNorm);
  }

  /** The parameters under the penalty: all weights and biases. */
  protected anchoredVariables(): tf.Variable[] {
    return [...this.net.trunkVariables(), ...this.net.headVariables()];
  }

  /** The Fisher diagonal of task t's training set at the current weights, over the anchored variables (dropout on, as the reference). */
  taskFisher(t: number, tasks: Task[]): tf.Tensor[] {
    return fisherDiagonal(this.anchoredVariables(), SampleSource.of(tasks[t].train, t), (batch) =>
      this.taskLoss(this.net.features(batch.x, { training: true }).h, batch),
    );
  }

  /** strength · ½ Σ w (θ_prev − θ)², or 0 before the first anchor. */
  penalty(): tf.Scalar {
    if (!this.anchor) return tf.scalar(0);
    const anchor = this.anchor;
    return tf.tidy(
      () =>
        tf.mul(
          quadraticAnchor(this.anchoredVariables(), anchor, this.anchorWeights ?? undefined),
          this.strength,
        ) as tf.Scalar,
    );
  }

  /**
   * The penalty in closed form: value strength·½·Σ w (θ − θ_prev)² and gradient strength·w·(θ − θ_prev) for the
   * step's variables (autodiff over the 7 M parameters of the AlexNet costed more than the network's own step).
   */
  protected override analyticTerm(vars: readonly tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } | null {
    const anchor = this.anchor;
    if (!anchor) return null;
    const stepping = new Set(vars.map((v) => v.name));
    const weights = this.anchorWeights;
    const grads: tf.NamedTensorMap = {};
    const terms = this.anchoredVariables().map((v, i) => {
      const d = tf.sub(v, anchor[i]);
      const wd = weights ? tf.mul(weights[i], d) : d;
      if (stepping.has(v.name)) grads[v.name] = tf.mul(wd, this.strength);
      return tf.sum(tf.mul(d, wd));
    });
    return { value: tf.mul(tf.addN(terms), 0.5 * this.strength) as tf.Scalar, grads };
  }

  /** A new head is anchored at its initial values with zero weight: no pull until a task has been learnt with it. */
  protected override afterAddTask(t: number): void {
    const head = this.net.heads[t];
    if (this.anchor) this.anchor.push(tf.clone(head.weight), tf.clone(head.bias));
    if (this.anchorWeights) this.anchorWeights.push(tf.zerosLike(head.weight), tf.zerosLike(head.bias));
  }

  /** Make the current parameters the new anchor. */
  protected setAnchorToCurrent(): void {
    if (this.anchor) tf.dispose(this.anchor);
    this.anchor = this.anchoredVariables().map((v) => tf.clone(v));
  }

  protected override extraState(): LearnerState {
    const tensors: Record<string, tf.Tensor> = {};
    this.anchor?.forEach((a, i) => (tensors[`anchor/${i}`] = a));
    this.anchorWeights?.forEach((w, i) => (tensors[`weights/${i}`] = w));
    return { tensors, json: { anchor: !!this.anchor, weights: !!this.anchorWeights } };
  }

  protected override loadExtraState(state: LearnerState): void {
    const flags = state.json as { anchor: boolean; weights: boolean };
    const n = this.anchoredVariables().length;
    const take = (kind: string) =>
      Array.from({ length: n }, (_, i) => {
        const t = state.tensors[`${kind}/${i}`];
        if (!t) throw new Error(`checkpoint has no ${kind} tensor ${i}`);
        return tf.clone(t);
      });
    if (this.anchor) tf.dispose(this.anchor);
    if (this.anchorWeights) tf.dispose(this.anchorWeights);
    this.anchor = flags.anchor ? take('anchor') : null;
    this.anchorWeights = flags.weights ? take('weights') : null;
  }

  override dispose(): void {
    if (this.anchor) tf.dispose(this.anchor);
    if (this.anchorWeights) tf.dispose(this.anchorWeights);
    super.dispose();
  }
}

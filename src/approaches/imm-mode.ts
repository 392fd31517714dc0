/**
 * IMM-mode, incremental moment matching by the Fisher-weighted mode (spec §5): train with the L2-transfer
 * penalty λ·½·Σ (θ_prev − θ)²; after each task merge θ ← (F_new ⊙ θ + F_acc ⊙ θ_prev)/(F_new + F_acc)
 * (a parameter with zero Fisher in both keeps θ), then F_acc += F_new.
 *
 * `merge=true` (default) is the paper's method. The reference code computes the merge into a temporary and
 * never writes it back, so its published numbers are L2-transfer only: `merge=false` reproduces that.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Task } from '../data/experiments';
import { type ParamValues, withDefaults } from '../core/params';
import { type Network } from '../nets/network';
import type { LearnerState } from '../training/types';
import { AnchoredLearner } from './anchored';
import { IMM_MODE_PARAMS } from './catalog';

export type ImmModeParams = ParamValues<typeof IMM_MODE_PARAMS>;

/** (F_new ⊙ θ + F_acc ⊙ θ_prev)/(F_new + F_acc), θ where both Fishers are 0. */
export function modeMerge(
  theta: tf.Tensor,
  thetaPrev: tf.Tensor,
  fisherNew: tf.Tensor,
  fisherAcc: tf.Tensor,
): tf.Tensor {
  return tf.tidy(() => {
    const den = tf.add(fisherNew, fisherAcc);
    const merged = tf.div(
      tf.add(tf.mul(fisherNew, theta), tf.mul(fisherAcc, thetaPrev)),
      tf.where(tf.greater(den, 0), den, tf.onesLike(den)),
    );
    return tf.where(tf.greater(den, 0), merged, theta);
  });
}

export class ImmMode extends AnchoredLearner {
  readonly id = 'imm-mode';
  readonly hyper: ImmModeParams;
  /** F_acc: sum of the Fisher diagonals of the tasks so far (merge=true only). */
  fisherAcc: tf.Tensor[] | null = null;

  constructor(net: Network, params: Partial<ImmModeParams> = {}) {
    const hyper = withDefaults(IMM_MODE_PARAMS, params, 'approach imm-mode');
    super(net, hyper.lambda, hyper.clipNorm);
    this.hyper = hyper;
  }
  get merge(): boolean {
    return this.hyper.merge;
  }

  override endTask(t: number, tasks: Task[]): void {
    super.endTask(t, tasks);
    if (this.merge) {
      const vars = this.anchoredVariables();
      const fresh = this.taskFisher(t, tasks);
      const acc = this.fisherAcc;
      const anchor = this.anchor;
      if (acc && anchor) {
        vars.forEach((v, i) => {
          const merged = modeMerge(v, anchor[i], fresh[i], acc[i]);
          v.assign(merged);
          merged.dispose();
        });
        this.fisherAcc = tf.tidy(() => acc.map((a, i) => tf.add(a, fresh[i])));
        tf.dispose([...acc, ...fresh]);
      } else {
        if (acc) tf.dispose(acc);
        this.fisherAcc = fresh;
      }
    }
    this.setAnchorToCurrent();
  }

  protected override afterAddTask(t: number): void {
    super.afterAddTask(t);
    const head = this.net.heads[t];
    if (this.fisherAcc) this.fisherAcc.push(tf.zerosLike(head.weight), tf.zerosLike(head.bias));
  }

  protected override extraState(): LearnerState {
    const state = super.extraState();
    this.fisherAcc?.forEach((f, i) => (state.tensors[`fisherAcc/${i}`] = f));
    return { tensors: state.tensors, json: { ...(state.json as object), fisherAcc: !!this.fisherAcc } };
  }

  protected override loadExtraState(state: LearnerState): void {
    super.loadExtraState(state);
    if (this.fisherAcc) tf.dispose(this.fisherAcc);
    this.fisherAcc = (state.json as { fisherAcc: boolean }).fisherAcc
      ? this.anchoredVariables().map((_, i) => tf.clone(state.tensors[`fisherAcc/${i}`]))
      : null;
  }

  override dispose(): void {
    if (this.fisherAcc) tf.dispose(this.fisherAcc);
    super.dispose();
  }
}

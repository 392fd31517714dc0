/**
 * EWC, elastic weight consolidation (spec §5): loss = CE_t + λ·½·Σ F ⊙ (θ_prev − θ)². After each task the
 * diagonal Fisher of that task (fisher.ts) is merged into a running average over tasks,
 * F ← (F_new + t·F_old)/(t+1), and θ_prev becomes the task's final weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Task } from '../data/experiments';
import { type ParamValues, withDefaults } from '../core/params';
import { type Network } from '../nets/network';
import { AnchoredLearner } from './anchored';
import { EWC_PARAMS } from './catalog';

export type EwcParams = ParamValues<typeof EWC_PARAMS>;

export class Ewc extends AnchoredLearner {
  readonly id = 'ewc';
  readonly hyper: EwcParams;

  constructor(net: Network, params: Partial<EwcParams> = {}) {
    const hyper = withDefaults(EWC_PARAMS, params, 'approach ewc');
    super(net, hyper.lambda, hyper.clipNorm);
    this.hyper = hyper;
  }

  /** Current Fisher diagonal (running average over tasks), aligned with the anchored variables. */
  get fisher(): tf.Tensor[] | null {
    return this.anchorWeights;
  }

  override endTask(t: number, tasks: Task[]): void {
    super.endTask(t, tasks);
    this.setAnchorToCurrent();
    const fresh = this.taskFisher(t, tasks);
    const old = this.anchorWeights;
    this.anchorWeights = old ? tf.tidy(() => fresh.map((f, i) => tf.div(tf.add(f, tf.mul(old[i], t)), t + 1))) : fresh;
    if (old) tf.dispose([...old, ...fresh]);
  }
}

/**
 * IMM-mean, incremental moment matching by averaging (spec §5): train with the L2-transfer penalty
 * r·½·Σ (θ_prev − θ)²; after each task t > 0 set θ ← (θ + t·θ_prev)/(t+1) over all parameters, heads
 * included (the reference's choice, which also dilutes the new head with its untrained initial values).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Task } from '../data/experiments';
import { type ParamValues, withDefaults } from '../core/params';
import { type Network } from '../nets/network';
import { AnchoredLearner } from './anchored';
import { IMM_MEAN_PARAMS } from './catalog';

export type ImmMeanParams = ParamValues<typeof IMM_MEAN_PARAMS>;

export class ImmMean extends AnchoredLearner {
  readonly id = 'imm-mean';
  readonly hyper: ImmMeanParams;

  constructor(net: Network, params: Partial<ImmMeanParams> = {}) {
    const hyper = withDefaults(IMM_MEAN_PARAMS, params, 'approach imm-mean');
    super(net, hyper.r, hyper.clipNorm);
    this.hyper = hyper;
  }

  override endTask(t: number, tasks: Task[]): void {
    super.endTask(t, tasks);
    const anchor = this.anchor;
    if (t > 0 && anchor) {
      this.anchoredVariables().forEach((v, i) => {
        const merged = tf.tidy(() => tf.div(tf.add(v, tf.mul(anchor[i], t)), t + 1));
        v.assign(merged);
        merged.dispose();
      });
    }
    this.setAnchorToCurrent();
  }
}

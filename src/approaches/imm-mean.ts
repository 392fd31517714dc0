/**
 * IMM-mean, incremental moment matching by averaging (spec §5): train with the L2-transfer penalty
 * r·½·Σ (θ_prev − θ)²; after each task t > 0 set θ ← (θ + t·θ_prev)/(t+1) over all parameters, heads
 * included (the reference's choice, which also dilutes the new head with its untrained initial values).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Task } from '../data/experiments';
import { Network } from '../nets/network';
import { AnchoredApproach } from './anchored';

export class ImmMean extends AnchoredApproach {
  readonly id = 'imm-mean';

  constructor(net: Network, opts: { r?: number; clipNorm?: number } = {}) {
    super(net, opts.r ?? 1e-4, { clipNorm: opts.clipNorm ?? 10000 });
    this.hyper = { r: this.strength, clipNorm: this.clipNorm };
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

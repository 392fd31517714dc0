/**
 * LFL, less-forgetting learning (spec §5): loss = CE_t + λ·½·Σ_batch Σ_units (h_old − h)², where h is the
 * last hidden layer's activation (fc2 of the LFL trunk, which has no dropout there) and h_old that of a
 * frozen copy of the network after the previous task. A sum over the batch, not a mean, as the reference.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Batch } from '../data/experiments';
import { type ParamValues, withDefaults } from '../core/params';
import { type Network } from '../nets/network';
import { LFL_PARAMS } from './catalog';
import { FrozenCopyLearner } from './frozen-copy';

export type LflParams = ParamValues<typeof LFL_PARAMS>;

export class Lfl extends FrozenCopyLearner {
  readonly id = 'lfl';
  readonly hyper: LflParams;
  /** ½·Σ_batch Σ_units (h_old − h)² grows with the batch: validate in training-size batches, as the reference. */
  protected override readonly sumsOverBatch = true;

  constructor(net: Network, params: Partial<LflParams> = {}) {
    const hyper = withDefaults(LFL_PARAMS, params, 'approach lfl');
    super(net, hyper.clipNorm);
    this.hyper = hyper;
    const last = net.config.layers[net.config.layers.length - 1];
    if (last.dropout !== 0)
      throw new Error(
        `LFL needs its trunk variant without dropout on the last hidden layer (${last.name} has ${last.dropout})`,
      );
  }
  get lambda(): number {
    return this.hyper.lambda;
  }

  /** ½ Σ (h_old − h)² over batch and units. */
  static featureDistance(h: tf.Tensor2D, hOld: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => tf.mul(tf.sum(tf.square(tf.sub(hOld, h))), 0.5) as tf.Scalar);
  }

  protected override objective(batch: Batch, training: boolean): tf.Scalar {
    const { h } = this.net.features(batch.x, { training });
    const ce = this.taskLoss(h, batch);
    const old = this.old.model;
    if (!old) return ce;
    const hOld = old.features(batch.x, { training: false }).h;
    return tf.add(ce, tf.mul(Lfl.featureDistance(h, hOld), this.lambda)) as tf.Scalar;
  }
}

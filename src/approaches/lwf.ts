/**
 * LwF, learning without forgetting (spec §5): loss = CE_t + λ Σ_{τ<t} D(new head τ, old head τ) on the current
 * task's images, where "old" is a frozen copy of the network after the previous task. D is the soft
 * cross-entropy between the old model's softened softmax (target) and the new one's (smoothed by 1e-5/n).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Batch } from '../data/experiments';
import { type ParamValues, withDefaults } from '../core/params';
import { type Network } from '../nets/network';
import { crossEntropy } from './base';
import { LWF_PARAMS } from './catalog';
import { FrozenCopyLearner } from './frozen-copy';

export type LwfParams = ParamValues<typeof LWF_PARAMS>;

/** softmax(logits) raised to the power `exp` and renormalised (the softened distribution at T = 1/exp). */
export function softened(logits: tf.Tensor2D, exp: number): tf.Tensor2D {
  return tf.tidy(() => {
    const p = tf.softmax(logits);
    if (exp === 1) return p;
    const q = tf.pow(p, exp);
    return tf.div(q, tf.sum(q, 1, true)) as tf.Tensor2D;
  });
}

/** Batch mean of −Σ target · log(new), target = softened old outputs, new smoothed by eps/n (reference utils.cross_entropy). */
export function distillationLoss(newLogits: tf.Tensor2D, oldLogits: tf.Tensor2D, exp: number, eps = 1e-5): tf.Scalar {
  return tf.tidy(() => {
    const target = softened(oldLogits, exp);
    const n = newLogits.shape[1];
    const raw = tf.add(softened(newLogits, exp), eps / n);
    const out = tf.div(raw, tf.sum(raw, 1, true));
    return tf.mean(tf.neg(tf.sum(tf.mul(target, tf.log(out)), 1))) as tf.Scalar;
  });
}

export class Lwf extends FrozenCopyLearner {
  readonly id = 'lwf';
  readonly hyper: LwfParams;

  constructor(net: Network, params: Partial<LwfParams> = {}) {
    const hyper = withDefaults(LWF_PARAMS, params, 'approach lwf');
    super(net, hyper.clipNorm);
    this.hyper = hyper;
  }
  get lambda(): number {
    return this.hyper.lambda;
  }
  get T(): number {
    return this.hyper.T;
  }

  /** Trunk, the current head and the earlier heads (the distillation term trains those too). */
  protected override trainableVariables(_batch: Batch): tf.Variable[] {
    return [...this.net.trunkVariables(), ...this.net.heads.slice(0, this.task + 1).flatMap((h) => [h.weight, h.bias])];
  }

  /** The distillation targets of head τ for inputs x: the old model's softened outputs. */
  targets(x: tf.Tensor, head: number): tf.Tensor2D {
    const old = this.old.model;
    if (!old) throw new Error('no old model before the first task is learnt');
    return tf.tidy(() => softened(old.logits(old.features(x, { training: false }).h, head), 1 / this.T));
  }

  protected override objective(batch: Batch, training: boolean): tf.Scalar {
    const { h } = this.net.features(batch.x, { training });
    const ce = crossEntropy(this.net.logits(h, batch.task), batch.y);
    const old = this.old.model;
    if (!old || batch.task === 0) return ce;
    const hOld = old.features(batch.x, { training: false }).h;
    const terms: tf.Scalar[] = [];
    for (let tau = 0; tau < batch.task; tau++)
      terms.push(distillationLoss(this.net.logits(h, tau), old.logits(hOld, tau), 1 / this.T));
    return tf.add(ce, tf.mul(tf.addN(terms), this.lambda)) as tf.Scalar;
  }
}

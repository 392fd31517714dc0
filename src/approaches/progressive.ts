/**
 * Progressive neural networks (spec §5): task t trains only its own column and lateral adapters
 * (../nets/progressive.ts); earlier columns are frozen, so earlier tasks keep exactly their outputs.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { type Batch } from '../data/experiments';
import { type ParamValues } from '../core/params';
import { type ProgressiveModel } from '../nets/progressive';
import { SgdLearner, crossEntropy } from './base';
import { type PROGRESSIVE_PARAMS } from './catalog';

export type ProgressiveParams = ParamValues<typeof PROGRESSIVE_PARAMS>;

export class Progressive extends SgdLearner<ProgressiveModel> {
  readonly id = 'progressive';
  readonly hyper: ProgressiveParams;

  /** The model carries the column parameters (widthFactor, fullRecursion, headLateral). */
  constructor(model: ProgressiveModel, params: Pick<ProgressiveParams, 'clipNorm'>) {
    super(model, params.clipNorm);
    this.hyper = { ...model.options, clipNorm: params.clipNorm };
  }

  protected trainableVariables(batch: Batch): tf.Variable[] {
    const vars = this.model.columnVariables(batch.task);
    const head = this.model.columns[batch.task].headLateral;
    // without the head lateral in the forward its adapter gets no gradient: leave it out of the update
    if (this.model.options.headLateral || !head) return vars;
    const unused = new Set([head.alpha, head.reduce.weight, head.reduce.bias, head.map.weight, head.map.bias]);
    return vars.filter((v) => !unused.has(v));
  }
  protected objective(batch: Batch, training: boolean): tf.Scalar {
    return crossEntropy(this.model.logits(batch.x, batch.task, training), batch.y);
  }
  protected evalLogits(x: tf.Tensor, task: number): tf.Tensor2D {
    return this.model.logits(x, task, false);
  }
}

/** SGD-F: train everything on the first task; from then on only the heads learn (spec §5). */
import type * as tf from '@tensorflow/tfjs-core';
import { type Batch } from '../data/experiments';
import { Sgd } from './sgd';

export class SgdFrozen extends Sgd {
  override readonly id = 'sgd-frozen';
  protected override trainableVariables(batch: Batch): tf.Variable[] {
    const all = super.trainableVariables(batch);
    if (this.task === 0) return all;
    const trunk = new Set(this.net.trunkVariables());
    return all.filter((v) => !trunk.has(v));
  }
}

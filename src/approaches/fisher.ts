/**
 * Diagonal empirical Fisher information as the reference computes it for EWC and IMM-mode (spec §5, quirk 5):
 * the task's training set in order, mini-batches of 20, dropout active; per batch add
 * 20 · (gradient of the batch-mean loss)², then divide by the number of samples. Parameters the loss does
 * not reach (other tasks' heads) get zeros.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Batch, type SampleSource } from '../data/experiments';

export const FISHER_BATCH = 20;

export function fisherDiagonal(
  vars: tf.Variable[],
  source: SampleSource,
  loss: (batch: Batch) => tf.Scalar,
  batchSize = FISHER_BATCH,
): tf.Tensor[] {
  let fisher: tf.Tensor[] = vars.map((v) => tf.zerosLike(v));
  source.forEachBatch(batchSize, (batch) => {
    const next = tf.tidy(() => {
      const { grads } = tf.variableGrads(() => loss(batch), vars);
      // the reference multiplies by the nominal batch size, also for the last, smaller batch
      return fisher.map((f, i) =>
        grads[vars[i].name] ? tf.add(f, tf.mul(tf.square(grads[vars[i].name]), batchSize)) : tf.clone(f),
      );
    });
    tf.dispose(fisher);
    fisher = next;
  });
  const scaled = tf.tidy(() => fisher.map((f) => tf.div(f, source.n)));
  tf.dispose(fisher);
  return scaled;
}

/** ½ Σ w ⊙ (θ_old − θ)² over aligned lists (w omitted = 1): the quadratic anchors of EWC and IMM. */
export function quadraticAnchor(current: tf.Tensor[], anchor: tf.Tensor[], weights?: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    const terms = current.map((v, i) => {
      const d2 = tf.square(tf.sub(anchor[i], v));
      return tf.sum(weights ? tf.mul(weights[i], d2) : d2);
    });
    return tf.mul(tf.addN(terms), 0.5) as tf.Scalar;
  });
}

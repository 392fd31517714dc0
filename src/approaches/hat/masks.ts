/** HAT's gradient conditioning (spec §2.6, §2.7): weight-gradient masks and the embedding-gradient compensation. */
import * as tf from '@tensorflow/tfjs-core';
import { fusedCompensate } from '../../backend/fused-kernels';
import { type LayerSpec, inputsPerUnitBelow } from '../../nets/geometry';

/** Cosh clip of the compensation (reference code); the embeddings' clamp lives with them (nets/config.ts). */
export const COSH_CLIP = 50;
export { EMBEDDING_CLAMP } from '../../nets/config';

/**
 * Gradient multiplier of the embedding compensation (spec §2.7):
 * kappa(e, s) = smax (cosh(clip(s e, -50, 50)) + 1) / (s (cosh(e) + 1)).
 * An underflowed sigma'(s e) gives a zero gradient already, and kappa stays finite, so no NaN.
 */
export function compensation(e: tf.Tensor, s: number, smax: number, coshClip = COSH_CLIP): tf.Tensor {
  return tf.tidy(() => {
    const num = tf.add(tf.cosh(tf.clipByValue(tf.mul(e, s), -coshClip, coshClip)), 1);
    const den = tf.add(tf.cosh(e), 1);
    return tf.mul(tf.div(num, den), smax / s);
  });
}

/**
 * g·kappa(e, s): an embedding's gradient compensated; one fused kernel on the native backend (the same bits as
 * the ops of `compensation`), those ops elsewhere.
 */
export function compensated(g: tf.Tensor, e: tf.Tensor, s: number, smax: number): tf.Tensor {
  return fusedCompensate(g, e, s, smax / s, COSH_CLIP) ?? tf.tidy(() => tf.mul(g, compensation(e, s, smax)));
}

/**
 * Multiplier 1 − min(A_out, A_in) of layer l's weight gradient, shaped to broadcast over the weight; the first
 * layer reads raw data, so only its output unit protects a weight. Which input unit a weight reads is the
 * trunk's geometry (nets/geometry.ts).
 */
export function weightGradientMask(
  layers: readonly LayerSpec[],
  l: number,
  out: tf.Tensor1D,
  below: tf.Tensor1D | null,
): tf.Tensor {
  return tf.tidy(() => {
    const { kind, inputs, units } = layers[l];
    if (!below) {
      const m = tf.sub(1, out);
      return kind === 'conv' ? tf.reshape(m, [1, 1, 1, units]) : tf.reshape(m, [1, units]);
    }
    const positions = inputsPerUnitBelow(layers, l);
    const inputAttention = positions > 1 ? tf.tile(below, [positions]) : below;
    const m = tf.sub(1, tf.minimum(tf.reshape(out, [1, units]), tf.reshape(inputAttention, [inputs, 1])));
    return kind === 'conv' ? tf.reshape(m, [1, 1, inputs, units]) : m;
  });
}

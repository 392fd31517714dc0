/** Gradient functions for the backends that do not bring their own (wasm, cpu). */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../core/errors';

/**
 * The @tensorflow/tfjs-core bundle registers no gradient functions; the union package @tensorflow/tfjs
 * does, into the same tfjs-core (a CommonJS bundle, so this also works outside tsx, e.g. in tslab).
 * tfjs-node loads it itself; wasm and cpu need it here.
 */
export function registerGradients(): void {
  if (tf.getGradient('Conv2D')) return;

  require('@tensorflow/tfjs');
  if (!tf.getGradient('Conv2D')) {
    throw new UserError(
      '@tensorflow/tfjs did not register its gradients with this copy of @tensorflow/tfjs-core (two copies installed? run `npm ci`)',
    );
  }
}

/**
 * TensorFlow ops that tfjs does not expose, run directly on the native backend (tfjs-node's eager executor):
 * the fused ReLU gradient, stateless seeded uniform noise (dropout masks drawn on the device) and L2Loss (a
 * half sum of squares in one pass). Each has a plain-tfjs fallback, so callers work on every backend; results
 * are reproducible per backend, not across them.
 */
import * as tf from '@tensorflow/tfjs-core';

/** An attribute of a TensorFlow op as tfjs-node's binding takes it. */
export interface OpAttr {
  name: string;
  type: number;
  value: number | boolean | string | number[];
}

/** The part of tfjs-node's NodeJSKernelBackend used here and in native-kernels.ts. */
export interface NativeBackend {
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_BOOL: number;
    TF_ATTR_FLOAT: number;
    TF_ATTR_INT: number;
    TF_FLOAT: number;
    TF_INT32: number;
    TF_BOOL: number;
  };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[], numOutputs: number): tf.Tensor[];
  write(values: Float32Array | Int32Array, shape: number[], dtype: 'float32' | 'int32'): object;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** The native backend when it is the active one, else null. */
export function nativeBackend(): NativeBackend | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  const b = tf.backend() as unknown as Partial<NativeBackend>;
  return typeof b.executeSingleOutput === 'function' && b.binding ? (b as NativeBackend) : null;
}

const floatAttr = (b: NativeBackend, name = 'T'): OpAttr => ({
  name,
  type: b.binding.TF_ATTR_TYPE,
  value: b.binding.TF_FLOAT,
});
const intAttr = (b: NativeBackend, name: string): OpAttr => ({
  name,
  type: b.binding.TF_ATTR_TYPE,
  value: b.binding.TF_INT32,
});

/** dy where the ReLU's output y is positive, else 0 (TensorFlow's ReluGrad: one kernel instead of six). */
export function reluGrad(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const b = nativeBackend();
  if (!b) return tf.mul(dy, tf.step(y));
  return b.executeSingleOutput('ReluGrad', [floatAttr(b)], [dy, y]);
}

/** Σ x²/2 (TensorFlow's L2Loss: one pass, one kernel). */
export function halfSumOfSquares(x: tf.Tensor): tf.Scalar {
  const b = nativeBackend();
  if (!b) return tf.tidy(() => tf.mul(tf.sum(tf.square(x)), 0.5));
  return b.executeSingleOutput('L2Loss', [floatAttr(b)], [x]) as tf.Scalar;
}

/**
 * Uniform noise in [0, 1) of a shape, a pure function of the seed pair (TensorFlow's StatelessRandomUniform:
 * Philox, on the device), or null when the backend has no such op (the caller draws in JS instead).
 */
export function statelessUniform(shape: number[], seed: [number, number]): tf.Tensor | null {
  const b = nativeBackend();
  if (!b) return null;
  return tf.tidy(() => {
    const shapeT = tf.tensor1d(shape, 'int32');
    const seedT = tf.tensor1d(seed, 'int32');
    return b.executeSingleOutput(
      'StatelessRandomUniform',
      [
        { name: 'dtype', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT },
        intAttr(b, 'T'),
        intAttr(b, 'Tseed'),
      ],
      [shapeT, seedT],
    );
  });
}

/** ReLU's gradient through TensorFlow's ReluGrad on the native backend (tfjs' own composes six kernels). */
export function installNativeGradients(): void {
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => reluGrad(dy as tf.Tensor, saved[0]) }),
  });
}

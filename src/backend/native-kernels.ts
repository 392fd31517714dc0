/**
 * Leaner versions of tfjs-node kernels that the training steps call hundreds of times per batch. tfjs-node
 * builds a new small tensor for every call (a shape, axes, begin and size, paddings, clip bounds), each a
 * TensorFlow tensor created and deleted through N-API: about 40 µs apiece, some 90 per HAT MLP step. Here
 * those operands are made once per distinct value and kept in the backend (outside the engine's tensor
 * count, so memory checks still see the model's tensors only), and ClipByValue is TensorFlow's one kernel
 * instead of Minimum then Maximum. Same TensorFlow ops on the same values: results are bit for bit the same.
 */
import * as tf from '@tensorflow/tfjs-core';

import type { NativeBackend as NodeBackend, OpAttr } from './native-ops';

type DType = 'float32' | 'int32';

/** Distinct constant operands kept (a few hundred in practice: shapes and axes of the model's tensors). */
const MAX_CONSTANTS = 4096;
const constants = new Map<string, tf.TensorInfo>();

/** A constant operand of these values, made once (its TensorFlow tensor is created at its first use). */
function constant(b: NodeBackend, values: readonly number[], shape: number[], dtype: DType): tf.TensorInfo {
  const key = `${dtype}|${shape.join(',')}|${values.join(',')}`;
  let info = constants.get(key);
  if (!info) {
    // kernels run one at a time, so a full cache can be emptied between two of them
    if (constants.size >= MAX_CONSTANTS) clearConstants(b);
    const data = dtype === 'int32' ? Int32Array.from(values) : Float32Array.from(values);
    info = { dataId: b.write(data, shape, dtype), shape, dtype };
    constants.set(key, info);
  }
  return info;
}

function clearConstants(b: NodeBackend): void {
  for (const info of constants.values()) b.disposeData(info.dataId, true);
  constants.clear();
}

const typeAttr = (b: NodeBackend, name: string, dtype: tf.DataType): OpAttr => ({
  name,
  type: b.binding.TF_ATTR_TYPE,
  value: dtype === 'int32' ? b.binding.TF_INT32 : dtype === 'bool' ? b.binding.TF_BOOL : b.binding.TF_FLOAT,
});
const reductionAttrs = (b: NodeBackend, x: tf.TensorInfo, keepDims: boolean): OpAttr[] => [
  { name: 'keep_dims', type: b.binding.TF_ATTR_BOOL, value: keepDims },
  typeAttr(b, 'T', x.dtype),
  typeAttr(b, 'Tidx', 'int32'),
];
const int1d = (b: NodeBackend, values: readonly number[]) => constant(b, values, [values.length], 'int32');

type Attrs = Record<string, unknown>;
type Kernel = (x: tf.TensorInfo, attrs: Attrs, b: NodeBackend) => tf.TensorInfo;

const reduction =
  (op: string, axisAttr: string): Kernel =>
  (x, attrs, b) =>
    b.executeSingleOutput(op, reductionAttrs(b, x, Boolean(attrs.keepDims)), [
      x,
      int1d(b, tf.util.parseAxisParam(attrs[axisAttr] as number | number[], x.shape)),
    ]);

/** An op of x and one int32 vector operand given as an attribute (Transpose's perm, Tile's reps). */
const withIndices =
  (op: string, indexType: string, attr: string): Kernel =>
  (x, attrs, b) =>
    b.executeSingleOutput(
      op,
      [typeAttr(b, 'T', x.dtype), typeAttr(b, indexType, 'int32')],
      [x, int1d(b, attrs[attr] as number[])],
    );

/** The kernels replaced, by name: each as tfjs-node's, with its constant operands kept. */
const KERNELS: Record<string, { dtypes: readonly tf.DataType[]; run: Kernel }> = {
  Reshape: {
    dtypes: ['float32', 'int32', 'bool'],
    run: (x, attrs, b) =>
      b.executeSingleOutput(
        'Reshape',
        [typeAttr(b, 'T', x.dtype), typeAttr(b, 'Tshape', 'int32')],
        [x, int1d(b, attrs.shape as number[])],
      ),
  },
  Sum: { dtypes: ['float32', 'int32'], run: reduction('Sum', 'axis') },
  Max: { dtypes: ['float32', 'int32'], run: reduction('Max', 'reductionIndices') },
  Min: { dtypes: ['float32', 'int32'], run: reduction('Min', 'axis') },
  // tfjs-node casts to float32 first; a float32 input needs no cast
  Mean: { dtypes: ['float32'], run: reduction('Mean', 'axis') },
  Transpose: { dtypes: ['float32', 'int32', 'bool'], run: withIndices('Transpose', 'Tperm', 'perm') },
  Tile: { dtypes: ['float32', 'int32'], run: withIndices('Tile', 'Tmultiples', 'reps') },
  Slice: {
    dtypes: ['float32', 'int32'],
    run: (x, attrs, b) => {
      const [begin, size] = tf.backend_util.slice_util.parseSliceParams(
        x as tf.Tensor,
        attrs.begin as number | number[],
        attrs.size as number | number[] | undefined,
      );
      return b.executeSingleOutput(
        'Slice',
        [typeAttr(b, 'T', x.dtype), typeAttr(b, 'Index', 'int32')],
        [x, int1d(b, begin), int1d(b, size)],
      );
    },
  },
  PadV2: {
    dtypes: ['float32'],
    run: (x, attrs, b) => {
      const paddings = attrs.paddings as [number, number][];
      return b.executeSingleOutput(
        'PadV2',
        [typeAttr(b, 'T', x.dtype), typeAttr(b, 'Tpaddings', 'int32')],
        [
          x,
          constant(b, paddings.flat(), [paddings.length, 2], 'int32'),
          constant(b, [attrs.constantValue as number], [], 'float32'),
        ],
      );
    },
  },
  // TensorFlow's ClipByValue: one kernel (tfjs-node runs Minimum, then Maximum, each with a new scalar)
  ClipByValue: {
    dtypes: ['float32'],
    run: (x, attrs, b) =>
      b.executeSingleOutput(
        'ClipByValue',
        [typeAttr(b, 'T', x.dtype)],
        [
          x,
          constant(b, [attrs.clipValueMin as number], [], 'float32'),
          constant(b, [attrs.clipValueMax as number], [], 'float32'),
        ],
      ),
  },
};

let installed = false;

/**
 * Replaces the tfjs-node kernels above for the 'tensorflow' backend (once). Inputs of a dtype a replacement
 * does not handle go to tfjs-node's own kernel. HAT_PLAIN_KERNELS=1 keeps tfjs-node's (to measure the gain).
 */
export function installNativeKernels(): void {
  if (installed || process.env.HAT_PLAIN_KERNELS === '1') return;
  installed = true;
  for (const [name, { dtypes, run }] of Object.entries(KERNELS)) {
    const original = tf.getKernel(name, 'tensorflow');
    if (!original) continue;
    tf.unregisterKernel(name, 'tensorflow');
    tf.registerKernel({
      kernelName: name,
      backendName: 'tensorflow',
      kernelFunc: (args) => {
        const x = (args.inputs as { x: tf.TensorInfo }).x;
        if (!dtypes.includes(x.dtype)) return original.kernelFunc(args);
        return run(x, args.attrs as Attrs, args.backend as unknown as NodeBackend);
      },
    });
  }
}

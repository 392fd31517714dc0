/**
 * Kernels that make @tensorflow/tfjs-backend-wasm 4.22 able to train the project's networks, and fast enough
 * to be worth it. Registered for the backend 'wasm' by `installWasmTrainingKernels()` (called by ./backend
 * after the wasm backend is set).
 *
 * - Conv2DBackpropFilter: missing on wasm, so no conv net could train (variableGrads of conv2d threw).
 * - UnsortedSegmentSum: missing on wasm; it is the gradient of tf.gather (used by mixed-task batches).
 * - BatchMatMul, _FusedMatMul: replaced by wrappers. wasm multiplies fast (XNNPACK) only when neither
 *   operand is transposed; a transpose flag falls back to a naive loop about 10x slower, and matMul's
 *   gradient always sets one. The wrappers transpose the flagged operand explicitly and call the
 *   original kernel without flags.
 * - Conv2DBackpropInput: replaced (stride 1 only; other cases go to the original kernel). The stock
 *   kernel is a naive loop; a forward (XNNPACK) convolution of the zero-padded output gradient with the
 *   spatially rotated, in/out-swapped filter gives the same result many times faster.
 * - MaxPoolGrad: replaced: the stock kernel routes the gradient of a window of negative values to the
 *   window's first element (not its maximum) and breaks ties unlike TensorFlow (harmless after a ReLU, but
 *   wrong in general). A JavaScript loop over views of the wasm memory, also faster.
 * - _FusedMatMul also needs the wrapper for correctness: the stock kernel with a bias and a transpose flag
 *   returns wrong values (seen on 4.22; tf.fused.matMul, not used by the project's networks).
 *
 * The kernels are built from the wasm backend's own kernel functions, called directly (no tape, no engine
 * bookkeeping; MaxPoolGrad is a plain loop); intermediates are released before returning, also when a
 * kernel throws. Numerical checks against the cpu backend: test/wasm-kernels.test.ts; speed:
 * bench/wasm-kernels.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerGradients } from './gradients';

const BACKEND = 'wasm';

/** Marks the kernel functions installed here (Symbol.for: survives a second copy of this module). */
const PATCHED = Symbol.for('hat-ts/wasm-training-kernel');
/** On a wrapper: the kernel config it replaced (restored by uninstallWasmTrainingKernels). */
const REPLACED = Symbol.for('hat-ts/wasm-training-kernel/replaced');

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The part of the wasm backend (BackendWasm) the kernels use. */
interface Backend {
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  readSync(dataId: tf.DataId): ArrayLike<number> | Uint8Array[];
  write(values: Int32Array | Float32Array, shape: number[], dtype: tf.DataType): tf.DataId;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of a tensor's data in wasm memory: valid until the memory grows (the next allocation). */
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export class WasmKernelError extends Error {
  override name = 'WasmKernelError';
}

/** Runs backend kernels on `backend` and releases every output not handed back with `keep`. */
class Scope {
  private readonly owned: tf.TensorInfo[] = [];

  constructor(readonly backend: Backend) {}

  /** Runs a kernel and returns its output number `output` (all outputs are owned by the scope). */
  run(
    kernelName: string,
    inputs: tf.NamedTensorInfoMap,
    attrs: tf.NamedAttrMap,
    kernel?: tf.KernelFunc,
    output = 0,
  ): tf.TensorInfo {
    const fn = kernel ?? tf.getKernel(kernelName, BACKEND)?.kernelFunc;
    if (!fn) throw new WasmKernelError(`the wasm backend has no ${kernelName} kernel`);
    const out = fn({ inputs, attrs, backend: this.backend });
    const outs = Array.isArray(out) ? out : [out];
    this.owned.push(...outs);
    if (output >= outs.length) throw new WasmKernelError(`${kernelName} has no output ${output}`);
    return outs[output];
  }

  /** A tensor (not owned by the scope) from raw values. */
  write(values: Int32Array | Float32Array, shape: number[], dtype: tf.DataType): tf.TensorInfo {
    const info = { dataId: this.backend.write(values, shape, dtype), shape, dtype };
    this.owned.push(info);
    return info;
  }

  /** Hands `info` to the caller: it is no longer released by `dispose`. */
  keep(info: tf.TensorInfo): tf.TensorInfo {
    const i = this.owned.lastIndexOf(info);
    if (i >= 0) this.owned.splice(i, 1);
    return info;
  }

  dispose(): void {
    for (const info of this.owned.splice(0)) this.backend.disposeData(info.dataId);
  }
}

/** Runs `body` with a scope; the returned tensor is kept, everything else in the scope is released. */
function scoped(backend: unknown, body: (s: Scope) => tf.TensorInfo): tf.TensorInfo {
  const s = new Scope(backend as Backend);
  try {
    return s.keep(body(s));
  } finally {
    s.dispose();
  }
}

function pair(v: unknown, name: string): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0], v[1]];
  throw new WasmKernelError(`bad ${name}: ${JSON.stringify(v)}`);
}

/** The padding attr of a conv kernel, as the forward conv computed it. */
type PadAttr = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

function convInfo(
  op: string,
  xShape: number[],
  filterShape: number[],
  attrs: tf.NamedAttrMap,
): tf.backend_util.Conv2DInfo {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as {
    strides: number | [number, number];
    pad: PadAttr;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new WasmKernelError(`${op} on wasm (hat-ts kernel): only NHWC is supported, got dataFormat ${dataFormat}`);
  }
  pair(strides, 'strides');
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
}

const lastTwoSwapped = (rank: number): number[] => [
  ...Array.from({ length: rank - 2 }, (_, i) => i),
  rank - 1,
  rank - 2,
];

// ---------------------------------------------------------------------------------------------------------
// Conv2DBackpropFilter (missing on wasm 4.22)
//
// dW[i, j, c, o] = sum_{n, y, x} xpad[n, s*y + i, s*x + j, c] * dy[n, y, x, o] is a convolution whose batch is
// x's channels and whose channels are x's batch: input x^T [C_in, H, W, N], filter dy^T [OH, OW, N, C_out]
// dilated by the forward stride, the forward padding; its output [C_in, >=kh, >=kw, C_out] (a row or column
// more with strides that do not divide evenly) is cropped and transposed to [kh, kw, C_in, C_out].
// Supports any padding ('valid', 'same', explicit) and strides; forward dilations never reach here (tfjs'
// conv2d gradient refuses them).
function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { filterShape } = attrs as unknown as { filterShape: [number, number, number, number] };
  const info = convInfo('Conv2DBackpropFilter', x.shape, filterShape, attrs ?? {});
  if (x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new WasmKernelError('Conv2DBackpropFilter on wasm: float32 only');
  const { top, bottom, left, right } = info.padInfo;
  const [kh, kw, cin, cout] = filterShape;
  return scoped(backend, (s) => {
    const xT = s.run('Transpose', { x }, { perm: [3, 1, 2, 0] });
    const dyT = s.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    let g = s.run(
      'Conv2D',
      { x: xT, filter: dyT },
      {
        strides: [1, 1],
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations: [info.strideHeight, info.strideWidth],
        dimRoundingMode: 'floor',
      },
    );
    if (g.shape[1] < kh || g.shape[2] < kw)
      throw new WasmKernelError(`Conv2DBackpropFilter: internal shape error ${g.shape}`);
    if (g.shape[1] !== kh || g.shape[2] !== kw)
      g = s.run('Slice', { x: g }, { begin: [0, 0, 0, 0], size: [cin, kh, kw, cout] });
    return s.run('Transpose', { x: g }, { perm: [1, 2, 0, 3] });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Conv2DBackpropInput (present on wasm but a naive loop)
//
// dx = conv2d(dy padded by (k-1-pad_before, k-1-pad_after), W rotated 180 degrees with in/out swapped),
// stride 1. Other strides (and negative paddings, i.e. explicit pads larger than the kernel) are left to the
// original kernel.
function conv2DBackpropInputVia(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const { inputShape } = attrs as unknown as { inputShape: [number, number, number, number] };
    const info = convInfo('Conv2DBackpropInput', inputShape, filter.shape, attrs ?? {});
    const [kh, kw] = filter.shape;
    const { top, left } = info.padInfo;
    const padTop = kh - 1 - top;
    const padLeft = kw - 1 - left;
    const padBottom = info.inHeight + kh - 1 - info.outHeight - padTop;
    const padRight = info.inWidth + kw - 1 - info.outWidth - padLeft;
    if (
      info.strideHeight !== 1 ||
      info.strideWidth !== 1 ||
      Math.min(padTop, padLeft, padBottom, padRight) < 0 ||
      dy.dtype !== 'float32' ||
      filter.dtype !== 'float32'
    ) {
      return original(args);
    }
    return scoped(backend, (s) => {
      const rotated = s.run('Reverse', { x: filter }, { dims: [0, 1] });
      const swapped = s.run('Transpose', { x: rotated }, { perm: [0, 1, 3, 2] });
      return s.run(
        'Conv2D',
        { x: dy, filter: swapped },
        {
          strides: [1, 1],
          pad: [
            [0, 0],
            [padTop, padBottom],
            [padLeft, padRight],
            [0, 0],
          ],
          dataFormat: 'NHWC',
          dilations: [1, 1],
          dimRoundingMode: 'floor',
        },
      );
    });
  };
}

// ---------------------------------------------------------------------------------------------------------
// BatchMatMul / _FusedMatMul (present, slow with transpose flags)
//
// Transposes a flagged operand (its last two axes) with the Transpose kernel, then calls the original
// kernel without flags so it takes the XNNPACK path. Bias, activation and batch broadcasting are the
// original kernel's business.
function matMulWithoutTransposes(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, backend } = args;
    const attrs = args.attrs ?? {};
    if (!attrs.transposeA && !attrs.transposeB) return original(args);
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    return scoped(backend, (s) => {
      const a2 = attrs.transposeA ? s.run('Transpose', { x: a }, { perm: lastTwoSwapped(a.shape.length) }) : a;
      const b2 = attrs.transposeB ? s.run('Transpose', { x: b }, { perm: lastTwoSwapped(b.shape.length) }) : b;
      return s.run('', { ...inputs, a: a2, b: b2 }, { ...attrs, transposeA: false, transposeB: false }, original);
    });
  };
}

// ---------------------------------------------------------------------------------------------------------
// MaxPoolGrad (present on wasm 4.22, but wrong: in a window of negative values the gradient goes to the
// window's first element, whatever the maximum; among tied maxima it picks the last, where TensorFlow and the
// cpu backend pick the first. MaxPoolWithArgmax has the same flaw, so it cannot stand in.)
//
// A loop over the windows in JavaScript, on views of the wasm memory: dx[argmax of window] += dy (first
// maximum, windows without a number get none, overlapping windows add up), as the cpu backend computes it.
// About 3x faster than the stock kernel too (AlexNet's pools: 13 ms instead of 43 ms for batch 64).
function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: PadAttr;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  if (input.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new WasmKernelError('MaxPoolGrad on wasm: float32 only');
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  if (dy.shape.join() !== info.outShape.join())
    throw new WasmKernelError(`MaxPoolGrad: dy shape ${dy.shape} is not the pooled shape ${info.outShape}`);
  const b = backend as Backend;
  const out = b.makeOutput(input.shape, 'float32');
  // views only after the allocation above (which may grow, and so detach, the wasm memory)
  const dx = b.typedArrayFromHeap(out) as Float32Array;
  const x = b.typedArrayFromHeap(input) as Float32Array;
  const g = b.typedArrayFromHeap(dy) as Float32Array;
  dx.fill(0);
  const {
    batchSize,
    inHeight,
    inWidth,
    inChannels: C,
    outHeight,
    outWidth,
    strideHeight,
    strideWidth,
    dilationHeight,
    dilationWidth,
  } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const rowStride = inWidth * C;
  const first = new Int32Array(C); // per channel: index of the window's maximum so far
  const best = new Float32Array(C);
  let o = 0;
  for (let n = 0; n < batchSize; n++) {
    const base = n * inHeight * rowStride;
    for (let yr = 0; yr < outHeight; yr++) {
      const r0 = yr * strideHeight - top;
      let rMin = r0;
      while (rMin < 0) rMin += dilationHeight;
      const rMax = Math.min(inHeight, r0 + fh);
      for (let yc = 0; yc < outWidth; yc++, o += C) {
        const c0 = yc * strideWidth - left;
        let cMin = c0;
        while (cMin < 0) cMin += dilationWidth;
        const cMax = Math.min(inWidth, c0 + fw);
        first.fill(-1);
        best.fill(-Infinity);
        for (let r = rMin; r < rMax; r += dilationHeight) {
          for (let c = cMin; c < cMax; c += dilationWidth) {
            const at = base + r * rowStride + c * C;
            for (let d = 0; d < C; d++) {
              const v = x[at + d];
              if (v > best[d]) {
                best[d] = v;
                first[d] = at + d;
              }
            }
          }
        }
        for (let d = 0; d < C; d++) if (first[d] >= 0) dx[first[d]] += g[o + d];
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// UnsortedSegmentSum (missing on wasm 4.22; it is tf.gather's gradient)
//
// out[segmentIds[i], ...] += x[i, ...] with the ScatterNd kernel (which adds duplicate indices). Ids outside
// [0, numSegments) are dropped, as in TensorFlow: they go to an extra segment that is cut off.
function unsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = attrs as unknown as { numSegments: number };
  const idRank = segmentIds.shape.length;
  if (x.shape.slice(0, idRank).some((d, i) => d !== segmentIds.shape[i])) {
    throw new WasmKernelError(
      `UnsortedSegmentSum: segmentIds shape ${segmentIds.shape} is not a prefix of x shape ${x.shape}`,
    );
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32')
    throw new WasmKernelError(`UnsortedSegmentSum on wasm: unsupported dtype ${x.dtype}`);
  const rest = x.shape.slice(idRank);
  const ids = (backend as Backend).readSync(segmentIds.dataId) as ArrayLike<number>;
  const n = ids.length;
  const index = new Int32Array(n);
  let dropped = false;
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    if (id >= 0 && id < numSegments) index[i] = id;
    else {
      index[i] = numSegments;
      dropped = true;
    }
  }
  const segments = numSegments + (dropped ? 1 : 0);
  return scoped(backend, (s) => {
    if (n === 0 || segments === 0) {
      return s.run('Fill', {}, { shape: [numSegments, ...rest], value: 0, dtype: x.dtype });
    }
    const indices = s.write(index, [n, 1], 'int32');
    const updates = s.run('Reshape', { x }, { shape: [n, ...rest] });
    const out = s.run('ScatterNd', { indices, updates }, { shape: [segments, ...rest] });
    if (!dropped) return out;
    return s.run('Slice', { x: out }, { begin: [0, ...rest.map(() => 0)], size: [numSegments, ...rest] });
  });
}

// ---------------------------------------------------------------------------------------------------------

type Marked = tf.KernelFunc & { [PATCHED]?: true; [REPLACED]?: tf.KernelConfig };

function isPatched(config: tf.KernelConfig | undefined): boolean {
  return !!config && (config.kernelFunc as Marked)[PATCHED] === true;
}

/** Registers `kernelFunc` for wasm, replacing (and keeping the setup/dispose of) any existing kernel. */
function register(kernelName: string, kernelFunc: tf.KernelFunc, previous?: tf.KernelConfig): void {
  const marked = kernelFunc as Marked;
  marked[PATCHED] = true;
  if (previous) {
    marked[REPLACED] = previous;
    tf.unregisterKernel(kernelName, BACKEND);
  }
  tf.registerKernel({
    kernelName,
    backendName: BACKEND,
    kernelFunc: marked,
    setupFunc: previous?.setupFunc,
    disposeFunc: previous?.disposeFunc,
  });
}

/** Kernels that only exist here: added when the backend lacks them. */
const ADDED: Record<string, tf.KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
  UnsortedSegmentSum: unsortedSegmentSum,
};

/** Stock kernels replaced outright (the stock one is wrong), keeping their setup. */
const REPLACED_KERNELS: Record<string, tf.KernelFunc> = {
  MaxPoolGrad: maxPoolGrad,
};

/** Existing kernels wrapped here: the wrapper receives the original kernel function. */
const WRAPPED: Record<string, (original: tf.KernelFunc) => tf.KernelFunc> = {
  BatchMatMul: matMulWithoutTransposes,
  _FusedMatMul: matMulWithoutTransposes,
  Conv2DBackpropInput: conv2DBackpropInputVia,
};

/** Names of the kernels installWasmTrainingKernels registers or wraps. */
export const WASM_TRAINING_KERNELS: readonly string[] = [
  ...Object.keys(ADDED),
  ...Object.keys(WRAPPED),
  ...Object.keys(REPLACED_KERNELS),
];

/**
 * Registers the training kernels above for the 'wasm' backend. Idempotent: kernels already installed (by
 * this or another copy of this module) are left alone. Loads @tensorflow/tfjs-backend-wasm if needed, so
 * that its own kernels are registered first and not re-registered over these later. Also makes sure
 * tfjs' gradient functions are registered (./gradients.ts), without which nothing trains.
 * `only` restricts the installation to some of WASM_TRAINING_KERNELS (benchmarks compare them one by one).
 */
export function installWasmTrainingKernels(only: readonly string[] = WASM_TRAINING_KERNELS): void {
  if (!tf.getKernel('Conv2D', BACKEND)) {
    require('@tensorflow/tfjs-backend-wasm');
  }
  registerGradients();
  for (const [name, fn] of Object.entries(ADDED)) {
    const existing = tf.getKernel(name, BACKEND);
    if (!existing && only.includes(name)) register(name, fn);
  }
  for (const [name, wrap] of Object.entries(WRAPPED)) {
    const existing = tf.getKernel(name, BACKEND);
    if (!only.includes(name)) continue;
    if (!existing || isPatched(existing)) continue;
    register(name, wrap(existing.kernelFunc), existing);
  }
  for (const [name, fn] of Object.entries(REPLACED_KERNELS)) {
    const existing = tf.getKernel(name, BACKEND);
    if (only.includes(name) && !isPatched(existing)) register(name, fn, existing);
  }
}

/**
 * Puts back the stock wasm kernels (wrapped ones restored, added ones removed): for benchmarks and tests
 * that compare against the unpatched backend.
 */
export function uninstallWasmTrainingKernels(): void {
  for (const name of WASM_TRAINING_KERNELS) {
    const config = tf.getKernel(name, BACKEND);
    if (!isPatched(config)) continue;
    const replaced = (config.kernelFunc as Marked)[REPLACED];
    tf.unregisterKernel(name, BACKEND);
    if (replaced) tf.registerKernel(replaced);
  }
}

/** Whether the kernel `name` on wasm is one of this module's (for tests and diagnostics). */
export function isWasmTrainingKernel(name: string): boolean {
  return isPatched(tf.getKernel(name, BACKEND));
}

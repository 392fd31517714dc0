/**
 * The fused kernels of fused-kernels.c on the native CPU backend: a hidden layer's bias, ReLU, dropout,
 * 2×2 max-pool and gate in one kernel, their gradients in one, and the parameter update w − g·step in one pass
 * (split over TensorFlow's threads for weight matrices and the first conv layer's maps). They replace chains of TensorFlow ops with the same
 * float32 operations in the same order, so results are bit for bit those of the chains (test/fused-kernels
 * checks each against them); what they save is a dozen trips per layer through TensorFlow's thread pool
 * (~80 µs each on 2 threads here) and passes over the weights (bench/README.md).
 *
 * Used when scripts/build-addons.sh built the addon and the TensorFlow library has the C kernel API; otherwise
 * (and with HAT_PLAIN_KERNELS=1, or on the GPU, where they would pull tensors to the host) every function
 * here returns null and callers run TensorFlow's own ops.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type NativeBackend, type OpAttr, nativeBackend } from './native-ops';
import { NATIVE_SETTINGS_ENV } from './settings';

interface Addon {
  register(libtensorflowFramework: string, threads: number): string[];
  setSumPacket(packet: number): void;
}

/** Whether the fused kernels run, and why not when they do not (for BackendInfo and the result files). */
export interface FusedKernelsStatus {
  active: boolean;
  reason?: string;
  /**
   * Whether the gradient kernels also return the bias's and gate's gradients (sums over rows) in TensorFlow's
   * order: the Eigen packet size (floats) that order was found with at start-up, or 0 (TensorFlow's Sum runs).
   */
  sumPacket?: number;
}

let status: FusedKernelsStatus = { active: false, reason: 'the native CPU backend is not active' };
let addon: Addon | null = null;
/** False while turned off by setFusedKernelsEnabled (tests and benchmarks compare both paths in one process). */
let enabled = true;

/** TensorFlow's intra-op threads as it starts them: the setting, else one per CPU. */
function intraOpThreads(): number {
  const set = Number(process.env[NATIVE_SETTINGS_ENV.intraOpThreads]);
  return Number.isInteger(set) && set > 0 ? set : os.availableParallelism();
}

/**
 * Registers the kernels with the TensorFlow library of the native CPU package `pkg` (once per process).
 * Never throws: a missing addon or an older TensorFlow leaves TensorFlow's own ops in use.
 */
export function installFusedKernels(pkg: string): FusedKernelsStatus {
  if (process.env.HAT_PLAIN_KERNELS === '1') return (status = { active: false, reason: 'HAT_PLAIN_KERNELS=1' });
  const file = path.join(fs.realpathSync(__dirname), '..', '..', '.cache', 'native', 'fused-kernels.node');
  if (!fs.existsSync(file))
    return (status = { active: false, reason: 'not built (scripts/build-addons.sh needs a C compiler)' });
  try {
    const lib = path.join(path.dirname(require.resolve(`${pkg}/package.json`)), 'deps', 'lib');
    const framework = path.join(lib, 'libtensorflow_framework.so.2');
    addon = require(file) as Addon;
    addon.register(framework, intraOpThreads());
    status = { active: true };
    status.sumPacket = findSumPacket(addon);
  } catch (e) {
    status = { active: false, reason: e instanceof Error ? e.message : String(e) };
  }
  return status;
}

/**
 * The packet size with which the kernels' sums over rows are TensorFlow's Sum bit for bit (its Eigen build's
 * reduction order depends on the vector width it was compiled for: 8 floats for AVX), tried on sums of 37 rows
 * (four accumulators, rows left over), 7 rows (one) and 1 row (a copy), with columns that fill no last packet;
 * 0 when none is: the kernels then return no sums and TensorFlow's Sum runs.
 */
function findSumPacket(addon: Addon): number {
  const b = nativeBackend()!;
  const same = (x: tf.Tensor, y: tf.Tensor) => {
    const [u, v] = [new Uint32Array(x.dataSync().slice().buffer), new Uint32Array(y.dataSync().slice().buffer)];
    return u.length === v.length && u.every((w, i) => w === v[i]);
  };
  return tf.tidy(() => {
    // values of many magnitudes and both signs, so that every order of adding them rounds differently
    const probes = [37, 7, 1].map((rows) => {
      const v = Float32Array.from(
        { length: rows * 29 },
        (_, i) => ((((i * 2654435761) >>> 8) % 2001) - 1000) * 10 ** ((i % 9) - 4),
      );
      return tf.tensor2d(v, [rows, 29]);
    });
    for (const packet of [8, 16, 4]) {
      addon.setSumPacket(packet);
      const matches = probes.every((x) => {
        const ones = tf.onesLike(x);
        const [dz, sum] = b.executeMultipleOutputs('HatDropoutReluGrad', [], [x, ones, ones], 2);
        return same(sum, tf.sum(dz, 0));
      });
      if (matches) return packet;
    }
    addon.setSumPacket(0);
    return 0;
  });
}

export function fusedKernelsStatus(): FusedKernelsStatus {
  return status;
}

/** Turns the fused kernels off (TensorFlow's own ops run) or back on, in this process; for A/B comparisons. */
export function setFusedKernelsEnabled(on: boolean): void {
  enabled = on;
}

/**
 * Turns the gradient kernels' sums over rows off (they return none, and TensorFlow's Sum runs, as on a build
 * whose order they do not match) or back on; for tests of that path.
 */
export function setFusedSumsEnabled(on: boolean): void {
  addon?.setSumPacket(on ? (status.sumPacket ?? 0) : 0);
}

/** Whether the fused kernels run now (the native CPU backend is active and they are registered). */
export function fusedKernelsActive(): boolean {
  return fused() !== null;
}

/** The native backend when the fused kernels can run on it. */
function fused(): NativeBackend | null {
  return status.active && enabled ? nativeBackend() : null;
}

/** Fused kernel `name` on `inputs` with `outputs` outputs, or null when the kernels do not run. */
function run(name: string, inputs: tf.Tensor[], outputs: number, attrs: (b: NativeBackend) => OpAttr[] = () => []) {
  const b = fused();
  return b ? b.executeMultipleOutputs(name, attrs(b), inputs, outputs) : null;
}

/**
 * The same for a kernel that takes an operand made for the call (a dropout kernel's int32 seed pair, HAT's
 * s: values that change every call, which as attributes would build a kernel per value), placed by `inputs`.
 */
function runWith(
  name: string,
  operand: () => tf.Tensor,
  inputs: (operand: tf.Tensor) => tf.Tensor[],
  outputs: number,
  attrs?: (b: NativeBackend) => OpAttr[],
) {
  if (!fused()) return null;
  const t = operand();
  try {
    return run(name, inputs(t), outputs, attrs);
  } finally {
    t.dispose();
  }
}

/** runWith for the kernels that draw dropout noise: the seed pair as the operand. */
function runSeeded(
  name: string,
  seed: readonly [number, number],
  inputs: (seed: tf.Tensor) => tf.Tensor[],
  outputs: number,
  attrs?: (b: NativeBackend) => OpAttr[],
) {
  return runWith(name, () => tf.tensor1d([seed[0], seed[1]], 'int32'), inputs, outputs, attrs);
}

// the factor the plain chain multiplies by, as float32 like its scalar operand
const keepAttr = (b: NativeBackend, rate: number) => ({
  name: 'keep',
  type: b.binding.TF_ATTR_FLOAT,
  value: 1 / (1 - rate),
});
const dropoutAttrs = (rate: number) => (b: NativeBackend) => [
  { name: 'rate', type: b.binding.TF_ATTR_FLOAT, value: rate },
  keepAttr(b, rate),
];

/**
 * [w − g·step, Σg²]: the update (TensorFlow's Mul then Sub) and the sum of the squares of g, accumulated in
 * double (not TensorFlow's float32 order: for bounds only), from one pass; or null.
 */
export function fusedSgdUpdate(w: tf.Tensor, g: tf.Tensor, step: tf.Scalar): [tf.Tensor, tf.Scalar] | null {
  return run('HatSgdUpdate', [w, g, step], 2) as [tf.Tensor, tf.Scalar] | null;
}

/**
 * [w − (g·mask)·step, Σg²] (TensorFlow's Mul by the mask, then Mul and Sub, without storing the masked
 * gradient; the sum of the unmasked g as fusedSgdUpdate's), or null; the mask broadcasts over g's last axes
 * (per unit, or the same shape as g).
 */
export function fusedMaskedSgdUpdate(
  w: tf.Tensor,
  g: tf.Tensor,
  mask: tf.Tensor,
  step: tf.Scalar,
): [tf.Tensor, tf.Scalar] | null {
  return run('HatMaskedSgdUpdate', [w, g, mask, step], 2) as [tf.Tensor, tf.Scalar] | null;
}

/**
 * TensorFlow's StatelessRandomUniform noise of x's shape for the seed, drawn by the fused kernels' own Philox
 * (the dropout kernels draw theirs the same way), or null. For checking it against TensorFlow's.
 */
export function fusedStatelessUniform(like: tf.Tensor, seed: readonly [number, number]): tf.Tensor | null {
  return runSeeded('HatStatelessUniform', seed, (s) => [like, s], 1)?.[0] ?? null;
}

/** [x·mask, mask] with the inverted-dropout mask of the seed's noise (TensorFlow's stateless uniform), or null. */
export function fusedDropout(
  x: tf.Tensor,
  seed: readonly [number, number],
  rate: number,
): [tf.Tensor, tf.Tensor] | null {
  return runSeeded('HatDropout', seed, (s) => [x, s], 2, dropoutAttrs(rate)) as [tf.Tensor, tf.Tensor] | null;
}

/**
 * A hidden layer after its op z: [r, mask, d] with r = relu(z + bias), d = r·mask (the mask of the seed's
 * noise), and with a gate also y = d·gate ([r, mask, d, y]); bias and gate per channel (last axis). Null when
 * the kernels do not run.
 */
export function fusedBiasReluDropout(
  z: tf.Tensor,
  bias: tf.Tensor,
  seed: readonly [number, number],
  rate: number,
  gate?: tf.Tensor,
): tf.Tensor[] | null {
  return layerKernel('HatBiasReluDropout', 3, z, bias, seed, rate, gate);
}

/**
 * A conv layer after its op, with its 2×2 max-pool (stride 2, valid; NHWC): [p, route] with p = maxpool(relu(z
 * + bias)·mask), and with a gate also y = p·gate ([p, route, y]). route holds, per pooled value, which of its
 * window's values it is and that value's dropout and ReLU state: all the gradient needs, in place of the
 * layer's activations at full size. Null when the kernels do not run.
 */
export function fusedBiasReluDropoutPool(
  z: tf.Tensor,
  bias: tf.Tensor,
  seed: readonly [number, number],
  rate: number,
  gate?: tf.Tensor,
): tf.Tensor[] | null {
  return layerKernel('HatBiasReluDropoutPool', 2, z, bias, seed, rate, gate);
}

/** Layer kernel `op` on z, the bias and the seed's noise (`outputs` outputs), or its gated twin `op`Gate. */
function layerKernel(
  op: string,
  outputs: number,
  z: tf.Tensor,
  bias: tf.Tensor,
  seed: readonly [number, number],
  rate: number,
  gate?: tf.Tensor,
): tf.Tensor[] | null {
  const inputs = (s: tf.Tensor) => (gate ? [z, bias, s, gate] : [z, bias, s]);
  return runSeeded(gate ? `${op}Gate` : op, seed, inputs, gate ? outputs + 1 : outputs, dropoutAttrs(rate));
}

const poolGradAttrs = (rate: number, height: number, width: number) => (b: NativeBackend) => [
  keepAttr(b, rate),
  { name: 'height', type: b.binding.TF_ATTR_INT, value: height },
  { name: 'width', type: b.binding.TF_ATTR_INT, value: width },
];

/**
 * The sums over rows (all axes but the last) a gradient kernel returned: the kernel's when it returned them
 * (in TensorFlow's order), else TensorFlow's Sum of `of`; the kernel's empty placeholders are released.
 */
function rowSum(given: tf.Tensor, of: tf.Tensor): tf.Tensor {
  if (given.size > 0 || of.size === 0) return given;
  given.dispose();
  return tf.sum(of, [...Array(of.rank - 1).keys()]);
}

/**
 * The gradient of fusedBiasReluDropoutPool's p w.r.t. z ([height, width] its spatial size): TensorFlow's
 * MaxPoolGrad (the first maximum of each window), then the dropout and ReLU gradient; [dz, the bias's gradient],
 * or null.
 */
export function fusedPoolDropoutReluGrad(
  dy: tf.Tensor,
  route: tf.Tensor,
  rate: number,
  [height, width]: readonly number[],
): [tf.Tensor, tf.Tensor] | null {
  const out = run('HatPoolDropoutReluGrad', [dy, route], 2, poolGradAttrs(rate, height, width));
  return out && [out[0], rowSum(out[1], out[0])];
}

/** The same through the gate y = p·gate: [dz, the bias's gradient, the gate's gradient], or null. */
export function fusedGatePoolDropoutReluGrad(
  dy: tf.Tensor,
  p: tf.Tensor,
  gate: tf.Tensor,
  route: tf.Tensor,
  rate: number,
  [height, width]: readonly number[],
): [tf.Tensor, tf.Tensor, tf.Tensor] | null {
  const out = run('HatGatePoolDropoutReluGrad', [dy, p, gate, route], 4, poolGradAttrs(rate, height, width));
  return out && gateGrads(out);
}

/** [dz, bias's gradient, gate's gradient] from a gated kernel's [dz, Σdz, Σdy·p, dy·p]. */
function gateGrads([dz, db, dGate, dyp]: tf.Tensor[]): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const grads: [tf.Tensor, tf.Tensor, tf.Tensor] = [dz, rowSum(db, dz), rowSum(dGate, dyp)];
  dyp.dispose();
  return grads;
}

/** [dz = ReluGrad(g·mask, r), the bias's gradient (dz summed over rows)], or null. */
export function fusedDropoutReluGrad(g: tf.Tensor, mask: tf.Tensor, r: tf.Tensor): [tf.Tensor, tf.Tensor] | null {
  const out = run('HatDropoutReluGrad', [g, mask, r], 2);
  return out && [out[0], rowSum(out[1], out[0])];
}

/**
 * A gated layer without pooling: [dz = ReluGrad((dy·gate)·mask, r), the bias's gradient, the gate's gradient
 * (dy·p summed over rows)], or null.
 */
export function fusedGateDropoutReluGrad(
  dy: tf.Tensor,
  p: tf.Tensor,
  gate: tf.Tensor,
  mask: tf.Tensor,
  r: tf.Tensor,
): [tf.Tensor, tf.Tensor, tf.Tensor] | null {
  const out = run('HatGateDropoutReluGrad', [dy, p, gate, mask, r], 4);
  return out && gateGrads(out);
}

/** The gradient of y = sigmoid(e·s) w.r.t. e, (dy·(y·(1 − y)))·s as tfjs's chain computes it, or null. */
export function fusedSigmoidScaleGrad(dy: tf.Tensor, y: tf.Tensor, s: number): tf.Tensor | null {
  return (
    runWith(
      'HatSigmoidScaleGrad',
      () => tf.scalar(s),
      (st) => [dy, y, st],
      1,
    )?.[0] ?? null
  );
}

/**
 * g·((cosh(clip(e·s, ±clip)) + 1) / (cosh(e) + 1)·k), k = smax/s: HAT's compensated embedding gradient
 * (approaches/hat/masks.ts) in one kernel, or null.
 */
export function fusedCompensate(g: tf.Tensor, e: tf.Tensor, s: number, k: number, clip: number): tf.Tensor | null {
  const attrs = (b: NativeBackend) => [{ name: 'clip', type: b.binding.TF_ATTR_FLOAT, value: clip }];
  return (
    runWith(
      'HatCompensate',
      () => tf.tensor1d([s, k]),
      (sk) => [g, e, sk],
      1,
      attrs,
    )?.[0] ?? null
  );
}

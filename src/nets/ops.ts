/**
 * The layer pieces every network is made of (spec §3): the op (stride-1 valid convolution or dense), ReLU,
 * seeded dropout, 2×2 max-pool. On the native backend the op, its bias and the ReLU run as one fused kernel
 * with a hand-written gradient (TensorFlow's ReluGrad, no gradient for raw-data inputs), and dropout masks
 * are drawn on the device; other backends compose plain tfjs ops and draw masks in JS. Either way a run is
 * reproducible from its seed on its backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  fusedBiasReluDropout,
  fusedBiasReluDropoutPool,
  fusedDropout,
  fusedDropoutReluGrad,
  fusedGateDropoutReluGrad,
  fusedGatePoolDropoutReluGrad,
  fusedKernelsActive,
  fusedPoolDropoutReluGrad,
  fusedSigmoidScaleGrad,
} from '../backend/fused-kernels';
import { reluGrad, statelessUniform } from '../backend/native-ops';
import { DropoutMasks, Rng, type RngState } from '../core/rng';
import type { LayerSpec } from './geometry';

/** Every axis but the batch axis in one (a conv map read by a dense layer; NHWC, so channel-last). */
export function flatten(x: tf.Tensor): tf.Tensor2D {
  return (x.rank > 2 ? tf.reshape(x, [x.shape[0], -1]) : x) as tf.Tensor2D;
}

/** A layer's op plus bias: stride-1 valid convolution for a 4-D weight, otherwise dense on the flattened input. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (weight.rank === 4) return tf.add(tf.conv2d(x as tf.Tensor4D, weight as tf.Tensor4D, 1, 'valid'), bias);
  return tf.add(tf.matMul(flatten(x), weight as tf.Tensor2D), bias);
}

/** relu(op(x) + bias) as tfjs ops (the path of the backends without the fused layer below). */
function composedLinearRelu(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  return tf.relu(linear(x, weight, bias));
}

const CONV = { strides: 1, pad: 'valid', dataFormat: 'NHWC', dilations: 1 } as const;
const POOL = { filterSize: 2, strides: 2, pad: 'valid' } as const;

/**
 * A whole hidden layer as one taped op with a hand-written gradient (native backend): op + bias → ReLU →
 * dropout → (2×2 max-pool) → (HAT gate). The tape then keeps a handful of tensors instead of cloning every
 * intermediate. With the fused kernels, everything after the op is one kernel forward and one backward
 * (a pooled layer keeps only each window's route, not its activations); without them, TensorFlow's own
 * kernels: the gate's product, MaxPoolGrad, the dropout mask, ReluGrad. Then the op's two backprops and the
 * bias sum. No input gradient for raw data.
 */
function fusedHidden(spec: LayerSpec, dropout: Dropout, inputGrad: boolean, gated: boolean) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, b, gate] = args.slice(0, gated ? 4 : 3) as tf.Tensor[];
    const save = args[gated ? 4 : 3] as tf.GradSaveFunc;
    const conv = w.rank === 4;
    const z = conv
      ? tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid')
      : tf.matMul(flatten(x), w as tf.Tensor2D);
    const seed = spec.dropout > 0 ? dropout.nextSeed() : null;
    // the fused kernels (when they run) do bias, ReLU, dropout, the pool and the gate in one; a pooled layer
    // keeps only each window's route for the gradient, not its activations
    const pooled =
      seed && spec.pool ? fusedBiasReluDropoutPool(z, b, seed, spec.dropout, gated ? gate : undefined) : null;
    if (pooled) {
      const [p, route] = pooled;
      save([x, w, route, p, gated ? gate : p]);
      const [height, width] = z.shape.slice(1, 3);
      return {
        value: gated ? pooled[2] : p,
        gradFunc: (dy: tf.Tensor, [xs, ws, rs, ps, gs]: tf.Tensor[]) => {
          if (!gated)
            return opGrads(xs, ws, fusedPoolDropoutReluGrad(dy, rs, spec.dropout, [height, width])!, inputGrad);
          const [dz, db, dGate] = fusedGatePoolDropoutReluGrad(dy, ps, gs, rs, spec.dropout, [height, width])!;
          return [...opGrads(xs, ws, [dz, db], inputGrad), dGate];
        },
      };
    }
    // (a pooled layer took the branch above when the kernels run, so a fused layer here has no pool)
    const f = seed && fusedBiasReluDropout(z, b, seed, spec.dropout, gated ? gate : undefined);
    const fusedPath = f !== null;
    const r = f ? f[0] : tf.relu(tf.add(z, b));
    const mask = f ? f[1] : seed ? dropout.mask(r.shape, spec.dropout, seed) : null;
    const d = f ? f[2] : mask ? tf.mul(r, mask) : r;
    const p = spec.pool ? tf.maxPool(d as tf.Tensor4D, 2, 2, 'valid') : d;
    const y = f && f[3] ? f[3] : gated ? tf.mul(p, gate) : p;
    save([x, w, r, mask ?? r, d, p, gated ? gate : p]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws, rs, ms, ds, ps, gs] = saved;
        if (fusedPath) {
          if (!gated) return opGrads(xs, ws, fusedDropoutReluGrad(dy, ms, rs)!, inputGrad);
          const [dz, db, dGate] = fusedGateDropoutReluGrad(dy, ps, gs, ms, rs)!;
          return [...opGrads(xs, ws, [dz, db], inputGrad), dGate];
        }
        // TensorFlow's own kernels
        let g = dy;
        let dGate: tf.Tensor | null = null;
        if (gated) {
          dGate = tf.sum(tf.mul(dy, ps), [...Array(dy.rank - 1).keys()]);
          g = tf.mul(dy, gs);
        }
        if (spec.pool)
          g = tf.engine().runKernel('MaxPoolGrad', { dy: g, input: ds, output: ps }, { ...POOL }) as tf.Tensor;
        const grads = opGrads(xs, ws, reluGrad(mask ? tf.mul(g, ms) : g, rs), inputGrad);
        return dGate ? [...grads, dGate] : grads;
      },
    };
  });
}

/**
 * The gradients of a layer's op plus bias w.r.t. its input, weight and bias, from dz (with the bias's gradient
 * when a fused kernel returned it; none for raw data).
 */
function opGrads(
  x: tf.Tensor,
  w: tf.Tensor,
  dzOrBoth: tf.Tensor | [tf.Tensor, tf.Tensor],
  inputGrad: boolean,
): tf.Tensor[] {
  const [dz, db] = Array.isArray(dzOrBoth) ? dzOrBoth : [dzOrBoth, null];
  if (w.rank === 4) {
    const dx = inputGrad
      ? (tf
          .engine()
          .runKernel('Conv2DBackpropInput', { dy: dz, filter: w }, { ...CONV, inputShape: x.shape }) as tf.Tensor)
      : tf.zerosLike(x);
    const dw = tf
      .engine()
      .runKernel('Conv2DBackpropFilter', { x, dy: dz }, { ...CONV, filterShape: w.shape }) as tf.Tensor;
    return [dx, dw, db ?? tf.sum(dz, [0, 1, 2])];
  }
  const dx = inputGrad ? tf.reshape(tf.matMul(dz, w as tf.Tensor2D, false, true), x.shape) : tf.zerosLike(x);
  return [dx, tf.matMul(flatten(x), dz as tf.Tensor2D, true, false), db ?? tf.sum(dz, 0)];
}

/**
 * Inverted dropout with masks from a model's seeded stream: every mask takes the next seed of a JS
 * generator; on the native backend the mask is TensorFlow's stateless Philox noise for that seed, drawn on
 * the device; elsewhere it is drawn in JS. The stream restarts from a key (per task) and its position can be
 * saved and restored, so an interrupted run draws the same masks when it resumes.
 */
export class Dropout {
  private seeds: Rng;
  constructor(key: string) {
    this.seeds = new Rng(`dropout/${key}`);
  }
  reseed(key: string): void {
    this.seeds = new Rng(`dropout/${key}`);
  }
  state(): RngState {
    return this.seeds.state();
  }
  setState(state: RngState): void {
    this.seeds = new Rng('', state);
  }

  /** The seed of the stream's next mask (the stream moves on by one mask). */
  nextSeed(): [number, number] {
    return [this.seeds.int32(), this.seeds.int32()];
  }

  /**
   * The inverted-dropout mask (0 or 1/(1 − rate)) for a tensor of this shape, of the stream's next seed or of
   * `seed`: on the native backend from TensorFlow's stateless uniform noise (Philox) of the seed, elsewhere
   * drawn in JS from it.
   */
  mask(shape: number[], rate: number, seed: [number, number] = this.nextSeed()): tf.Tensor {
    const keep = 1 / (1 - rate);
    const noise = statelessUniform(shape, seed);
    if (noise) return tf.mul(tf.cast(tf.greaterEqual(noise, rate), 'float32'), keep);
    const size = shape.reduce((a, b) => a * b, 1);
    return tf.tensor(new DropoutMasks(seed[0] ^ seed[1]).mask(size, rate), shape);
  }

  /** x with each value kept with probability 1 − rate and scaled by 1/(1 − rate), in training only. */
  apply(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
    if (!training || rate <= 0) return x;
    const seed = this.nextSeed();
    if (!fusedKernelsActive()) return tf.mul(x, this.mask(x.shape, rate, seed));
    // one fused kernel (the same mask, its noise drawn inside), taped with the plain chain's gradient
    return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [y, mask] = fusedDropout(args[0] as tf.Tensor, seed, rate)!;
      (args[1] as tf.GradSaveFunc)([mask]);
      return { value: y, gradFunc: (dy: tf.Tensor, [m]: tf.Tensor[]) => tf.mul(dy, m) };
    })(x);
  }
}

/**
 * HAT's gate sigmoid(e·s) (spec §2.2). With the fused kernels it is taped as one op whose gradient is one
 * kernel (tfjs's Sigmoid and Mul gradients, same bits); otherwise tfjs's ops.
 */
export function sigmoidGate(e: tf.Tensor, s: number | tf.Scalar): tf.Tensor1D {
  if (typeof s !== 'number' || !fusedKernelsActive()) return tf.tidy(() => tf.sigmoid(tf.mul(e, s)) as tf.Tensor1D);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const y = tf.sigmoid(tf.mul(x, s));
    save([y]);
    return { value: y, gradFunc: (dy: tf.Tensor, [ys]: tf.Tensor[]) => fusedSigmoidScaleGrad(dy, ys, s)! };
  });
  return tf.tidy(() => f(e) as tf.Tensor1D);
}

/** What every hidden layer of spec §3 does after its op and ReLU: dropout → (2×2 max-pool). */
export function dropoutPool(spec: LayerSpec, h: tf.Tensor, training: boolean, dropout: Dropout): tf.Tensor {
  const d = dropout.apply(h, spec.dropout, training);
  return spec.pool ? tf.maxPool(d as tf.Tensor4D, 2, 2, 'valid') : d;
}

/**
 * A whole hidden layer of spec §3: op → ReLU → dropout → (pool) → (gate, one value per unit, broadcast
 * over height and width). `inputGrad` false when x is raw data (its gradient is never used).
 */
export function hiddenLayer(
  spec: LayerSpec,
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
  training: boolean,
  dropout: Dropout,
  opts: { gate?: tf.Tensor1D; inputGrad?: boolean } = {},
): tf.Tensor {
  const { gate, inputGrad = true } = opts;
  // training passes are differentiated: the fused layer; evaluation is a plain forward pass
  if (training && tf.getBackend() === 'tensorflow') {
    const f = fusedHidden(spec, dropout, inputGrad, gate !== undefined);
    return gate ? f(x, weight, bias, gate) : f(x, weight, bias);
  }
  const h = dropoutPool(spec, composedLinearRelu(x, weight, bias), training, dropout);
  return gate ? tf.mul(h, gate) : h;
}

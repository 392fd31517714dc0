/**
 * HAT: hard attention to the task (spec §2).
 *
 * Per batch: s is annealed from 1/smax to smax over the epoch; the loss adds c times the attention-weighted
 * capacity regulariser; weight and bias gradients are multiplied by 1 - min(A_out, A_in) where A is the
 * cumulative attention of earlier tasks; embedding gradients are compensated for the annealing; after the
 * step embeddings are clamped to [-6, 6]. Everything that depends only on A (gradient masks, the
 * regulariser's free-capacity weights and denominator) is computed once per task, not per batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Batch, Task } from '../data/experiments';
import { HiddenLayer, Network } from '../nets/network';
import { NetworkApproach } from './approach';

export interface HatOptions {
  /** Stability: the largest gate scale (spec default 400). */
  smax: number;
  /** Compressibility: weight of the capacity regulariser (spec default 0.75). */
  c: number;
  /** s schedule within an epoch: reference code (sample index, default) or paper (batch index). */
  schedule?: 'code' | 'paper';
  clipNorm?: number;
  /** Embedding clamp (6) and cosh clip (50) of the reference. */
  clamp?: number;
}

export const HAT_DEFAULTS = { smax: 400, c: 0.75, clamp: 6, coshClip: 50 } as const;

/**
 * Gradient multiplier of the embedding compensation (spec §2.7):
 * kappa(e, s) = smax (cosh(clip(s e, -50, 50)) + 1) / (s (cosh(e) + 1)).
 * An underflowed sigma'(s e) gives a zero gradient already, and kappa stays finite, so no NaN.
 */
export function compensation(e: tf.Tensor, s: number, smax: number, coshClip = HAT_DEFAULTS.coshClip): tf.Tensor {
  return tf.tidy(() => {
    const num = tf.add(tf.cosh(tf.clipByValue(tf.mul(e, s), -coshClip, coshClip)), 1);
    const den = tf.add(tf.cosh(e), 1);
    return tf.mul(tf.div(num, den), smax / s);
  });
}

/** Multiplier 1 - min(A_out, A_in) for a layer's weight gradient, shaped to broadcast over the weight. */
export function weightGradientMask(layer: HiddenLayer, out: tf.Tensor1D, input: tf.Tensor1D | null): tf.Tensor {
  return tf.tidy(() => {
    const { kind, inputs, units } = layer.spec;
    if (!input) {
      // first layer: its input is raw data, only the output unit protects the weight
      const m = tf.sub(1, out);
      return kind === 'conv' ? tf.reshape(m, [1, 1, 1, units]) : tf.reshape(m, [1, units]);
    }
    let inputAttention = input;
    if (layer.flattenChannels) {
      // fc1 after the conv stack: NHWC flatten puts channel c at positions j with j % C = c
      inputAttention = tf.tile(input, [inputs / layer.flattenChannels]);
    }
    const m = tf.sub(1, tf.minimum(tf.reshape(out, [1, units]), tf.reshape(inputAttention, [inputs, 1])));
    return kind === 'conv' ? tf.reshape(m, [1, 1, inputs, units]) : m;
  });
}

export class Hat extends NetworkApproach {
  readonly id = 'hat';
  readonly smax: number;
  readonly c: number;
  readonly schedule: 'code' | 'paper';
  readonly clamp: number;
  /** Cumulative attention A_l after the tasks learnt so far (null before the first). */
  cumulative: tf.Tensor1D[] | null = null;
  /** Each finished task's own gates sigma(smax e_t), as numbers (for mask statistics and figures). */
  readonly taskGates: number[][][] = [];
  private masks: { weight: tf.Tensor; bias: tf.Tensor }[] | null = null;
  /** 1 - A_l per layer, and sum over all of it (the regulariser's denominator). */
  private free: tf.Tensor1D[] = [];
  private freeTotal!: tf.Scalar;
  /** s of the current batch, set by trainBatch. */
  private s = 1;
  private batchesPerEpoch = 1;

  constructor(net: Network, opts: Partial<HatOptions> = {}) {
    super(net, { clipNorm: opts.clipNorm ?? 10000 });
    if (!net.gated) throw new Error('HAT needs a network built with hat: true');
    this.smax = opts.smax ?? HAT_DEFAULTS.smax;
    this.c = opts.c ?? HAT_DEFAULTS.c;
    this.schedule = opts.schedule ?? 'code';
    this.clamp = opts.clamp ?? HAT_DEFAULTS.clamp;
    if (!(this.smax > 0)) throw new Error(`smax must be > 0, got ${this.smax}`);
    if (!(this.c >= 0)) throw new Error(`c must be >= 0, got ${this.c}`);
    this.hyper = { smax: this.smax, c: this.c, schedule: this.schedule, clipNorm: this.clipNorm, clamp: this.clamp };
    this.updateCapacity();
  }

  /** s for a batch starting at `progress` (fraction of the epoch's samples before it), spec §2.4. */
  annealedS(progress: number): number {
    const { smax } = this;
    if (this.schedule === 'paper') {
      const B = this.batchesPerEpoch;
      const b = Math.round(progress * B);
      return B > 1 ? 1 / smax + ((smax - 1 / smax) * b) / (B - 1) : smax;
    }
    return 1 / smax + (smax - 1 / smax) * progress;
  }

  /** Tell the schedule how many batches an epoch has (paper form only). */
  setBatchesPerEpoch(n: number): void {
    this.batchesPerEpoch = n;
  }

  protected override trainableVariables(batch: Batch): tf.Variable[] {
    return [...super.trainableVariables(batch), ...this.net.embeddingVariables()];
  }

  /** R(a, A) = sum a (1 - A) / sum (1 - A) (spec §2.5); 0 when no capacity is left. */
  regulariser(gates: tf.Tensor1D[]): tf.Scalar {
    return tf.tidy(() => {
      const used = tf.addN(gates.map((a, l) => tf.sum(tf.mul(a, this.free[l]))));
      return tf.div(used, tf.maximum(this.freeTotal, 1e-12)) as tf.Scalar;
    });
  }

  protected override objective(batch: Batch, training: boolean): tf.Scalar {
    if (batch.task < 0) throw new Error('HAT trains one task at a time');
    const s = training ? this.s : this.smax;
    const { h, gates } = this.net.features(batch.x, { training, task: batch.task, s });
    return tf.add(this.taskLoss(h, batch), tf.mul(this.regulariser(gates), this.c)) as tf.Scalar;
  }

  override trainBatch(batch: Batch, lr: number, progress: number): tf.Scalar {
    this.s = this.annealedS(progress);
    return super.trainBatch(batch, lr, progress);
  }

  protected override conditionGradients(grads: tf.NamedTensorMap): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = { ...grads };
    if (this.masks) {
      this.net.layers.forEach((layer, l) => {
        out[layer.weight.name] = tf.mul(grads[layer.weight.name], this.masks![l].weight);
        out[layer.bias.name] = tf.mul(grads[layer.bias.name], this.masks![l].bias);
      });
    }
    for (const layer of this.net.layers) {
      const e = layer.embedding!;
      out[e.name] = tf.mul(grads[e.name], compensation(e, this.s, this.smax));
    }
    return out;
  }

  protected override afterStep(): void {
    for (const e of this.net.embeddingVariables()) e.assign(tf.clipByValue(e, -this.clamp, this.clamp));
  }

  protected override evalFeatures(x: tf.Tensor, task: number): tf.Tensor2D {
    return this.net.features(x, { training: false, task, s: this.smax }).h;
  }

  /** The gates of task t at s = smax, per layer. */
  gates(t: number): tf.Tensor1D[] {
    return this.net.layers.map((l) => l.gate(t, this.smax));
  }

  override endTask(t: number, tasks: Task[]): void {
    super.endTask(t, tasks);
    const own = this.gates(t);
    this.taskGates[t] = own.map((g) => Array.from(g.dataSync()));
    const next = own.map((a, l) => (this.cumulative ? tf.maximum(this.cumulative[l], a) : tf.clone(a)) as tf.Tensor1D);
    if (this.cumulative) tf.dispose(this.cumulative);
    tf.dispose(own);
    this.cumulative = next;
    this.updateCapacity();
  }

  /** Recompute everything that depends on the cumulative attention (once per task). */
  private updateCapacity(): void {
    tf.dispose(this.free);
    if (this.freeTotal) this.freeTotal.dispose();
    if (this.masks) tf.dispose(this.masks.flatMap((m) => [m.weight, m.bias]));
    const A = this.cumulative;
    const layers = this.net.layers;
    // one tidy: the literal 1s of `1 - A` are tensors too, and must not outlive this computation
    const computed = tf.tidy(() => {
      const free = layers.map((l, i) => (A ? tf.sub(1, A[i]) : tf.ones([l.units])) as tf.Tensor1D);
      const freeTotal = tf.addN(free.map((f) => tf.sum(f))) as tf.Scalar;
      const weight = A ? layers.map((layer, l) => weightGradientMask(layer, A[l], l > 0 ? A[l - 1] : null)) : [];
      const bias = A ? A.map((a) => tf.sub(1, a)) : [];
      return { free, freeTotal, weight, bias };
    }) as { free: tf.Tensor1D[]; freeTotal: tf.Scalar; weight: tf.Tensor[]; bias: tf.Tensor[] };
    this.free = computed.free;
    this.freeTotal = computed.freeTotal;
    this.masks = A ? computed.weight.map((weight, l) => ({ weight, bias: computed.bias[l] })) : null;
  }

  /** Replace the cumulative attention (checkpoint restore, tests). */
  setCumulative(A: tf.Tensor1D[] | null): void {
    if (this.cumulative) tf.dispose(this.cumulative);
    this.cumulative = A ? A.map((a) => tf.clone(a)) : null;
    this.updateCapacity();
  }

  override checkpointState(): { tensors: Record<string, tf.Tensor>; json: unknown } {
    const { tensors } = super.checkpointState();
    this.cumulative?.forEach((a, l) => (tensors[`cumulative/${l}`] = a));
    return { tensors, json: { taskGates: this.taskGates } };
  }

  override loadCheckpointState(state: { tensors: Record<string, tf.Tensor>; json: unknown }): void {
    super.loadCheckpointState(state);
    const gates = (state.json as { taskGates: number[][][] }).taskGates;
    this.taskGates.splice(0, this.taskGates.length, ...gates);
    const A = this.net.layers.map((_, l) => state.tensors[`cumulative/${l}`] as tf.Tensor1D | undefined);
    this.setCumulative(A.every((a) => a) ? (A as tf.Tensor1D[]) : null);
  }

  override summary(): Record<string, unknown> {
    return {
      layers: this.net.layers.map((l) => ({ name: l.name, units: l.units })),
      taskGates: this.taskGates,
    };
  }

  override dispose(): void {
    if (this.cumulative) tf.dispose(this.cumulative);
    tf.dispose(this.free);
    this.freeTotal?.dispose();
    if (this.masks) tf.dispose(this.masks.flatMap((m) => [m.weight, m.bias]));
    super.dispose();
  }
}

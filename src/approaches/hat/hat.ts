/**
 * HAT: hard attention to the task (spec §2).
 *
 * Per batch: s is annealed from 1/smax to smax over the epoch (./schedule.ts); the loss adds c times the
 * attention-weighted capacity regulariser; weight and bias gradients are multiplied by 1 − min(A_out, A_in)
 * where A is the cumulative attention of earlier tasks (./masks.ts); embedding gradients are compensated for
 * the annealing; after the step embeddings are clamped to [−6, 6]. Everything that depends only on A
 * (gradient masks, the regulariser's free-capacity weights and denominator) is computed once per task.
 * The gates belong to the network's layers (nets/network.ts), which own their task embeddings.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type ParamValues, withDefaults } from '../../core/params';
import { type Batch, type Task } from '../../data/experiments';
import type { LayerSpec } from '../../nets/geometry';
import { type Network } from '../../nets/network';
import type { LearnerState, ReportsMasks, StepPosition } from '../../training/types';
import { NetworkLearner } from '../base';
import { HAT_PARAMS } from '../catalog';
import { EMBEDDING_CLAMP, compensated, weightGradientMask } from './masks';
import { annealedS } from './schedule';

export type HatParams = ParamValues<typeof HAT_PARAMS>;

export class Hat extends NetworkLearner implements ReportsMasks {
  readonly id = 'hat';
  readonly hyper: HatParams;
  /** Cumulative attention A_l after the tasks learnt so far (null before the first). */
  cumulative: tf.Tensor1D[] | null = null;
  /** Each finished task's own gates sigma(smax e_t), as numbers (for mask statistics and figures). */
  readonly taskGates: number[][][] = [];
  private masks: { weight: tf.Tensor; bias: tf.Tensor }[] | null = null;
  /** 1 - A_l per layer, and the regulariser's denominator: its sum over all layers, at least 1e-12. */
  private free: tf.Tensor1D[] = [];
  private denominator!: tf.Scalar;
  /** s of the current batch, set before each step. */
  private s = 1;
  /** The embedding rows the current step trains: its task's, one per layer. */
  private stepEmbeddings: tf.Variable[] = [];

  constructor(net: Network, params: Partial<HatParams> = {}) {
    const hyper = withDefaults(HAT_PARAMS, { embeddingInit: net.config.embeddingInit, ...params }, 'approach hat');
    super(net, hyper.clipNorm);
    if (!net.gated) throw new Error('HAT needs a network built with hat: true');
    if (hyper.embeddingInit !== net.config.embeddingInit) {
      throw new Error(
        `HAT's embeddingInit=${hyper.embeddingInit} but the network was built with ${net.config.embeddingInit}`,
      );
    }
    this.hyper = hyper;
    this.updateCapacity();
  }

  get smax(): number {
    return this.hyper.smax;
  }
  get c(): number {
    return this.hyper.c;
  }
  /** Gate scale at validation and test: smax, or step gates (evalScale·smax) in the compression variant. */
  get evalS(): number {
    return this.hyper.evalScale * this.hyper.smax;
  }
  get gatedLayers(): readonly LayerSpec[] {
    return this.net.config.layers;
  }

  protected override beforeStep(at: StepPosition): void {
    this.s = annealedS(this.hyper.schedule, this.smax, at);
  }

  protected override trainableVariables(batch: Batch): tf.Variable[] {
    this.stepEmbeddings = this.net.taskEmbeddings(batch.task);
    return [...super.trainableVariables(batch), ...this.stepEmbeddings];
  }

  /**
   * R(a, A) = sum a (1 - A) / sum (1 - A) (spec §2.5); 0 when no capacity is left. Taped as one op: its gradient
   * w.r.t. each gate, (dy / denominator)·(1 − A_l), is what tfjs's chain of gradients gives (its products by
   * ones are exact), in one Div and a Mul per layer instead of a dozen ops.
   */
  regulariser(gates: tf.Tensor1D[]): tf.Scalar {
    const { free, denominator } = this;
    const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const a = args.slice(0, gates.length) as tf.Tensor[];
      const used = tf.addN(a.map((g, l) => tf.sum(tf.mul(g, free[l]))));
      return {
        value: tf.div(used, denominator),
        gradFunc: (dy: tf.Tensor) => {
          const dUsed = tf.div(dy, denominator);
          return free.map((fl) => tf.mul(dUsed, fl));
        },
      };
    });
    return tf.tidy(() => f(...gates) as tf.Scalar);
  }

  protected override objective(batch: Batch, training: boolean): tf.Scalar {
    if (batch.task < 0) throw new Error('HAT trains one task at a time');
    const s = training ? this.s : this.evalS;
    const { h, gates } = this.net.features(batch.x, { training, task: batch.task, s });
    return tf.add(this.taskLoss(h, batch), tf.mul(this.regulariser(gates), this.c)) as tf.Scalar;
  }

  /** The weight-gradient masks 1 − min(A_out, A_in) of the layers' weights and biases (none at the first task). */
  protected override gradientMasks(): Readonly<Record<string, tf.Tensor>> {
    const out: Record<string, tf.Tensor> = {};
    this.masks?.forEach((m, l) => {
      out[this.net.layers[l].weight.name] = m.weight;
      out[this.net.layers[l].bias.name] = m.bias;
    });
    return out;
  }

  /** The embedding-gradient compensation (spec §2.7). */
  protected override conditionGradients(grads: tf.NamedTensorMap): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = { ...grads };
    for (const e of this.stepEmbeddings) out[e.name] = compensated(grads[e.name], e, this.s, this.smax);
    return out;
  }

  protected override afterStep(): void {
    for (const e of this.stepEmbeddings) e.assign(tf.clipByValue(e, -EMBEDDING_CLAMP, EMBEDDING_CLAMP));
  }

  protected override evalFeatures(x: tf.Tensor, task: number): tf.Tensor2D {
    return this.net.features(x, { training: false, task, s: this.evalS }).h;
  }

  /** The gates of task t at s = smax, per layer. */
  gates(t: number): tf.Tensor1D[] {
    return this.net.layers.map((l) => l.gate(t, this.smax));
  }

  currentGates(t: number): { gates: number[][]; regulariser: number } {
    const gates = this.gates(t);
    const r = this.regulariser(gates);
    const out = { gates: gates.map((g) => Array.from(g.dataSync())), regulariser: r.dataSync()[0] };
    tf.dispose([...gates, r]);
    return out;
  }

  cumulativeBefore(t: number): number[][] {
    const layers = this.net.layers;
    if (t === 0) return layers.map((l) => new Array<number>(l.units).fill(0));
    return layers.map((_, l) => {
      const acc = new Array<number>(layers[l].units).fill(0);
      for (const gates of this.taskGates.slice(0, t)) gates[l].forEach((g, i) => (acc[i] = Math.max(acc[i], g)));
      return acc;
    });
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
    if (this.denominator) this.denominator.dispose();
    if (this.masks) tf.dispose(this.masks.flatMap((m) => [m.weight, m.bias]));
    const A = this.cumulative;
    const layers = this.net.layers;
    const specs = this.net.config.layers;
    // one tidy: the literal 1s of `1 - A` are tensors too, and must not outlive this computation
    const computed = tf.tidy(() => {
      const free = layers.map((l, i) => (A ? tf.sub(1, A[i]) : tf.ones([l.units])));
      const denominator = tf.maximum(tf.addN(free.map((f) => tf.sum(f))), 1e-12) as tf.Scalar;
      const weight = A ? layers.map((_, l) => weightGradientMask(specs, l, A[l], l > 0 ? A[l - 1] : null)) : [];
      const bias = A ? A.map((a) => tf.sub(1, a)) : [];
      return { free, denominator, weight, bias };
    }) as { free: tf.Tensor1D[]; denominator: tf.Scalar; weight: tf.Tensor[]; bias: tf.Tensor[] };
    this.free = computed.free;
    this.denominator = computed.denominator;
    this.masks = A ? computed.weight.map((weight, l) => ({ weight, bias: computed.bias[l] })) : null;
  }

  /** Replace the cumulative attention (state restore, tests). */
  setCumulative(A: tf.Tensor1D[] | null): void {
    if (this.cumulative) tf.dispose(this.cumulative);
    this.cumulative = A ? A.map((a) => tf.clone(a)) : null;
    this.updateCapacity();
  }

  protected override extraState(): LearnerState {
    const tensors: Record<string, tf.Tensor> = {};
    this.cumulative?.forEach((a, l) => (tensors[`cumulative/${l}`] = a));
    return { tensors, json: { taskGates: this.taskGates } };
  }

  protected override loadExtraState(state: LearnerState): void {
    const gates = (state.json as { taskGates: number[][][] }).taskGates;
    this.taskGates.splice(0, this.taskGates.length, ...gates);
    const A = this.net.layers.map((_, l) => state.tensors[`cumulative/${l}`] as tf.Tensor1D | undefined);
    this.setCumulative(A.every((a) => a) ? (A as tf.Tensor1D[]) : null);
  }

  override summary(): Record<string, unknown> {
    return { layers: this.net.layers.map((l) => ({ name: l.name, units: l.units })), taskGates: this.taskGates };
  }

  override dispose(): void {
    if (this.cumulative) tf.dispose(this.cumulative);
    tf.dispose(this.free);
    this.denominator?.dispose();
    if (this.masks) tf.dispose(this.masks.flatMap((m) => [m.weight, m.bias]));
    super.dispose();
  }
}

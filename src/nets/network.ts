/**
 * The paper's networks (spec §3) as plain tfjs variables: a trunk of hidden layers (conv or dense), one
 * linear head per task. With `hat: true` every hidden layer owns its task-embedding table and gates its
 * units with sigmoid(s * e_t) (spec §2.2): the layer both applies and reports its gate. Configurations are in
 * ./config.ts, how layers connect in ./geometry.ts.
 *
 * Layout is NHWC (tfjs' native layout), so conv weights are [kh, kw, in, out], dense weights [in, out], and
 * flattening a conv output is channel-last (./geometry.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../core/rng';
import { Dropout, flatten, hiddenLayer, linear, sigmoidGate } from './ops';
import { EMBEDDING_CLAMP, type InitScheme, type ModelDescription, type NetworkConfig } from './config';
import { type LayerSpec, layerGeometry } from './geometry';

/** What an approach trains: a set of named variables with its own dropout stream. */
export interface Model {
  /** Unique prefix of the variable names ("net3"); checkpoints store names without it. */
  readonly prefix: string;
  variables(): tf.Variable[];
  /** Weights and biases that make predictions (the paper's parameter count; HAT embeddings excluded). */
  parameterCount(): number;
  /** The model's seeded dropout stream (the trainer restarts it per task; checkpoints save its position). */
  readonly dropout: Dropout;
  /** For the result file. */
  describe(): ModelDescription;
  dispose(): void;
}

/** A variable's name without its model's unique prefix (the name checkpoints store). */
export function localName(model: Model, v: tf.Variable): string {
  return v.name.slice(model.prefix.length + 1);
}

let modelCounter = 0;
/** A fresh unique variable-name prefix for a model. */
export function nextModelPrefix(kind = 'net'): string {
  return `${kind}${modelCounter++}`;
}

/** A variable initialised from `value`, which it takes over (tf.variable copies and leaves the original). */
export function ownedVariable(value: tf.Tensor, name: string): tf.Variable {
  const v = tf.variable(value, true, name);
  value.dispose();
  return v;
}

/** PyTorch 0.2 default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) or Xavier uniform U(-sqrt(6/(fan_in+fan_out)), +). */
export function initWeights(rng: Rng, scheme: InitScheme, shape: number[], fanIn: number, fanOut: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const bound = scheme === 'pytorch' ? 1 / Math.sqrt(fanIn) : Math.sqrt(6 / (fanIn + fanOut));
  return tf.tensor(rng.uniformArray(n, -bound, bound), shape);
}

/** Bias init: the same uniform as the weights under the PyTorch scheme, zeros under Xavier. */
export function initBias(rng: Rng, scheme: InitScheme, units: number, fanIn: number): tf.Tensor {
  return scheme === 'pytorch' ? initWeights(rng, 'pytorch', [units], fanIn, units) : tf.zeros([units]);
}
/** One hidden layer: op -> ReLU -> dropout -> (pool) -> (HAT gate). */
export class HiddenLayer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  /**
   * HAT task embeddings, one [units] variable per task when the network is gated (one more for every task
   * added): a step trains only its own task's, so its gradient, compensation and clamp touch one row.
   */
  readonly embeddings: tf.Variable[] = [];
  private readonly prefix: string;

  constructor(
    readonly spec: LayerSpec,
    prefix: string,
    tasks: number,
    config: NetworkConfig,
    rng: Rng,
    /** HAT's embeddings draw from their own stream, so gated and plain trunks of one seed get the same weights. */
    embeddingRng: Rng,
  ) {
    this.prefix = prefix;
    const { units } = spec;
    const { shape, fanIn, fanOut } = layerGeometry(spec);
    const bias = initBias(rng, config.init, units, fanIn);
    this.weight = ownedVariable(initWeights(rng, config.init, shape, fanIn, fanOut), `${prefix}/${spec.name}/weight`);
    this.bias = ownedVariable(bias, `${prefix}/${spec.name}/bias`);
    if (config.hat) {
      // all tasks' rows drawn at once, row-major, as one [tasks, units] table would be
      const values =
        config.embeddingInit === 'normal'
          ? embeddingRng.normalArray(tasks * units)
          : embeddingRng.uniformArray(tasks * units, 0, 2);
      for (let t = 0; t < tasks; t++) this.pushEmbedding(values.slice(t * units, (t + 1) * units));
    }
  }

  /**
   * A task's embedding row, clamped to [-6, 6] as every step clamps it (the reference clamps the whole table
   * after every step, so a row is clamped before its task's first step either way).
   */
  private pushEmbedding(values: ArrayLike<number>): void {
    const row = Float32Array.from(values);
    for (let i = 0; i < row.length; i++) row[i] = Math.min(EMBEDDING_CLAMP, Math.max(-EMBEDDING_CLAMP, row[i]));
    const t = this.embeddings.length;
    this.embeddings.push(ownedVariable(tf.tensor1d(row), `${this.prefix}/${this.spec.name}/embedding/${t}`));
  }

  /** Appends the embedding row of a new task (drawn like the others, from its own stream). */
  addEmbeddingRow(init: NetworkConfig['embeddingInit'], rng: Rng): void {
    if (!this.embeddings.length) return;
    const { units } = this.spec;
    this.pushEmbedding(init === 'normal' ? rng.normalArray(units) : rng.uniformArray(units, 0, 2));
  }

  /** The embeddings as one [tasks, units] table (a copy; the caller disposes it). */
  embeddingTable(): tf.Tensor2D {
    if (!this.embeddings.length) throw new Error(`layer ${this.name} has no HAT embedding`);
    return tf.stack(this.embeddings) as tf.Tensor2D;
  }

  get name(): string {
    return this.spec.name;
  }
  get units(): number {
    return this.spec.units;
  }

  /** sigmoid(s * e_task): the layer's gate for a task (spec §2.2). */
  gate(task: number, s: number | tf.Scalar): tf.Tensor1D {
    const e = this.embeddings[task];
    if (!e) throw new Error(`layer ${this.name} has no HAT embedding for task ${task + 1}`);
    return sigmoidGate(e, s);
  }

  /** `inputGrad` false for the first layer, whose input is raw data. */
  apply(x: tf.Tensor, training: boolean, dropout: Dropout, gate?: tf.Tensor1D, inputGrad = true): tf.Tensor {
    return hiddenLayer(this.spec, x, this.weight, this.bias, training, dropout, { gate, inputGrad });
  }
}

export interface ForwardOptions {
  training: boolean;
  /** Task whose HAT gates to apply (gated networks). */
  task?: number;
  /** Gate scale s (default: the value given by the caller's schedule). */
  s?: number | tf.Scalar;
}

export class Network implements Model {
  readonly layers: HiddenLayer[] = [];
  readonly heads: { weight: tf.Variable; bias: tf.Variable }[] = [];
  readonly prefix: string;
  readonly dropout: Dropout;

  constructor(
    readonly config: NetworkConfig,
    readonly seed: number | string,
  ) {
    this.prefix = nextModelPrefix('net');
    const rng = new Rng(`init/${seed}`);
    const embeddingRng = rng.fork('embeddings');
    this.dropout = new Dropout(String(seed));
    for (const spec of config.layers)
      this.layers.push(new HiddenLayer(spec, this.prefix, config.heads.length, config, rng, embeddingRng));
    const last = config.layers[config.layers.length - 1].units;
    config.heads.forEach((n, t) => {
      const bias = initBias(rng, config.init, n, last);
      this.heads.push({
        weight: ownedVariable(initWeights(rng, config.init, [last, n], last, n), `${this.prefix}/head${t}/weight`),
        bias: ownedVariable(bias, `${this.prefix}/head${t}/bias`),
      });
    });
  }

  get tasks(): number {
    return this.heads.length;
  }

  /**
   * Grows the network by one task (a loaded model learning a task it was not built for): a new head and, for
   * HAT, a new embedding row per layer, each drawn from a stream of its own (so earlier tasks are untouched).
   */
  addTask(classes: number): number {
    const t = this.heads.length;
    const rng = new Rng(`init/${this.seed}/task${t}`);
    const last = this.config.layers[this.config.layers.length - 1].units;
    const bias = initBias(rng, this.config.init, classes, last);
    this.heads.push({
      weight: ownedVariable(
        initWeights(rng, this.config.init, [last, classes], last, classes),
        `${this.prefix}/head${t}/weight`,
      ),
      bias: ownedVariable(bias, `${this.prefix}/head${t}/bias`),
    });
    for (const layer of this.layers)
      layer.addEmbeddingRow(this.config.embeddingInit, rng.fork(`embedding/${layer.name}`));
    this.config.heads.push(classes);
    return t;
  }
  get gated(): boolean {
    return this.config.hat;
  }

  /** Trunk output for a batch, and the gates applied (one per hidden layer, gated networks only). */
  features(x: tf.Tensor, opts: ForwardOptions): { h: tf.Tensor2D; gates: tf.Tensor1D[] } {
    let h = this.dropout.apply(x, this.config.inputDropout, opts.training);
    const gates: tf.Tensor1D[] = [];
    const gating = this.gated && opts.task !== undefined;
    if (gating && opts.s === undefined) throw new Error('a gated forward pass needs the gate scale s');
    for (const layer of this.layers) {
      const gate = gating ? layer.gate(opts.task!, opts.s!) : undefined;
      if (gate) gates.push(gate);
      h = layer.apply(h, opts.training, this.dropout, gate, layer !== this.layers[0]);
    }
    return { h: flatten(h), gates };
  }

  /** Logits of head `task`. */
  logits(h: tf.Tensor2D, task: number): tf.Tensor2D {
    const head = this.heads[task];
    return linear(h, head.weight, head.bias) as tf.Tensor2D;
  }

  trunkVariables(): tf.Variable[] {
    return this.layers.flatMap((l) => [l.weight, l.bias]);
  }
  headVariables(): tf.Variable[] {
    return this.heads.flatMap((h) => [h.weight, h.bias]);
  }
  embeddingVariables(): tf.Variable[] {
    return this.layers.flatMap((l) => l.embeddings);
  }
  /** Task t's embedding row of every gated layer (what a HAT step on task t trains). */
  taskEmbeddings(t: number): tf.Variable[] {
    return this.layers.flatMap((l) => (l.embeddings[t] ? [l.embeddings[t]] : []));
  }
  variables(): tf.Variable[] {
    return [...this.trunkVariables(), ...this.headVariables(), ...this.embeddingVariables()];
  }

  /** Weights and biases of trunk and heads (the paper's parameter count; embeddings excluded). */
  parameterCount(): number {
    return [...this.trunkVariables(), ...this.headVariables()].reduce((n, v) => n + v.size, 0);
  }

  describe(): ModelDescription {
    return {
      parameters: this.parameterCount(),
      embeddings: this.embeddingVariables().reduce((n, v) => n + v.size, 0),
      layers: this.layers.map((l) => l.spec),
    };
  }

  /** A copy with the same config and current values (LwF's and LFL's frozen "old" model). */
  copy(): Network {
    const twin = new Network({ ...this.config, heads: [...this.config.heads] }, `${this.prefix}/copy`);
    twin.restore(this.variables());
    return twin;
  }

  /** Copies of all variables (early stopping keeps the best epoch's). */
  snapshot(): tf.Tensor[] {
    return this.variables().map((v) => tf.clone(v));
  }
  restore(snapshot: tf.Tensor[]): void {
    this.variables().forEach((v, i) => v.assign(snapshot[i]));
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}

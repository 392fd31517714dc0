/**
 * Progressive neural network (spec §3.4): one column per task, each a copy of the base network with every
 * layer ⌊widthFactor · units / T⌋ wide and its own head. Column t > 0 also receives, on every layer after the
 * first and on its head, a lateral input from the previous columns' outputs of the layer below: each
 * previous column j's activation is scaled by a learned scalar α_j, the scaled activations are concatenated,
 * then reduced (1×1 conv or linear, t·c → c), passed through ReLU (not for the head) and mapped with the
 * layer's own op (conv with the layer's kernel, or linear) to the layer's output, added to the column's
 * pre-activation.
 *
 * Reference behaviour (default): previous columns act as lateral sources computed as plain columns, i.e.
 * without their own laterals; `fullRecursion` computes them with their laterals instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../core/rng';
import { type ModelDescription, type NetworkConfig, scaledLayerSpecs } from './config';
import { type LayerSpec, layerGeometry } from './geometry';
import { type Model, initBias, initWeights, nextModelPrefix, ownedVariable } from './network';
import { Dropout, dropoutPool, flatten, linear } from './ops';

export interface ProgressiveOptions {
  /** Column width = ⌊widthFactor · units / T⌋ (1.117: parameter-matched AlexNet). */
  widthFactor: number;
  /** Previous columns feed laterals with their own laterals (true PNN recursion) instead of as plain columns (reference). */
  fullRecursion: boolean;
  /** Add the head's lateral (spec); false reproduces the reference, whose head adapters never reach a loss. */
  headLateral: boolean;
}

export interface Dense {
  weight: tf.Variable;
  bias: tf.Variable;
}

/** Lateral adapter into one layer (or the head) of one column. */
export interface Lateral {
  /** α_j for each previous column j. */
  alpha: tf.Variable;
  /** Reduction t·c_in → c_in (1×1 conv or linear). */
  reduce: Dense;
  /** c_in → c_out with the layer's own op (conv kernel or linear). */
  map: Dense;
  relu: boolean;
  conv: boolean;
}

export interface Column {
  layers: Dense[];
  head: Dense;
  /** laterals[l] for layers 1..L-1 (index l), and `headLateral`; empty for column 0. */
  laterals: (Lateral | null)[];
  headLateral: Lateral | null;
}

/** Column-sized layer specs: ⌊widthFactor · units / T⌋ per layer. */
export function columnLayerSpecs(base: NetworkConfig, widthFactor: number): LayerSpec[] {
  return scaledLayerSpecs(base, (layer) => (widthFactor * layer.units) / base.heads.length);
}

export class ProgressiveModel implements Model {
  readonly prefix = nextModelPrefix('pnn');
  readonly specs: LayerSpec[];
  readonly columns: Column[] = [];
  readonly dropout: Dropout;

  constructor(
    readonly base: NetworkConfig,
    readonly options: ProgressiveOptions,
    seed: number | string,
  ) {
    const rng = new Rng(`init/pnn/${seed}`);
    this.dropout = new Dropout(String(seed));
    this.specs = columnLayerSpecs(base, options.widthFactor);
    const scheme = base.init;
    const dense = (name: string, shape: number[], fanIn: number, fanOut: number): Dense => ({
      weight: ownedVariable(initWeights(rng, scheme, shape, fanIn, fanOut), `${name}/weight`),
      bias: ownedVariable(initBias(rng, scheme, shape[shape.length - 1], fanIn), `${name}/bias`),
    });
    const layerOp = (name: string, spec: LayerSpec): Dense => {
      const { shape, fanIn, fanOut } = layerGeometry(spec);
      return dense(name, shape, fanIn, fanOut);
    };
    const last = this.specs[this.specs.length - 1].units;
    base.heads.forEach((classes, t) => {
      const p = `${this.prefix}/col${t}`;
      const lateral = (
        name: string,
        t: number,
        inputs: number,
        conv: boolean,
        map: (name: string) => Dense,
        relu: boolean,
      ): Lateral => ({
        alpha: ownedVariable(tf.tensor1d(rng.normalArray(t)), `${name}/alpha`),
        reduce: conv
          ? dense(`${name}/reduce`, [1, 1, t * inputs, inputs], t * inputs, inputs)
          : dense(`${name}/reduce`, [t * inputs, inputs], t * inputs, inputs),
        map: map(`${name}/map`),
        relu,
        conv,
      });
      const layers = this.specs.map((spec) => layerOp(`${p}/${spec.name}`, spec));
      const head = dense(`${p}/head`, [last, classes], last, classes);
      const laterals = this.specs.map((spec, l) =>
        t > 0 && l > 0
          ? lateral(`${p}/${spec.name}/lateral`, t, spec.inputs, spec.kind === 'conv', (n) => layerOp(n, spec), true)
          : null,
      );
      const headLateral =
        t > 0
          ? lateral(`${p}/head/lateral`, t, last, false, (n) => dense(n, [last, classes], last, classes), false)
          : null;
      this.columns.push({ layers, head, laterals, headLateral });
    });
  }

  /** Σ_j α_j h_j concatenated → reduce → (ReLU) → map: the lateral contribution to a pre-activation. */
  private lateral(lat: Lateral, sources: tf.Tensor[]): tf.Tensor {
    const scaled = sources.map((h, j) =>
      tf.mul(lat.conv ? h : flatten(h), tf.reshape(tf.slice(lat.alpha, [j], [1]), [])),
    );
    const joined = scaled.length === 1 ? scaled[0] : tf.concat(scaled, lat.conv ? 3 : 1);
    const z = linear(joined, lat.reduce.weight, lat.reduce.bias);
    return linear(lat.relu ? tf.relu(z) : z, lat.map.weight, lat.map.bias);
  }

  /**
   * Outputs of every layer of column c (post ReLU/dropout/pool), with laterals from `sources` (per previous
   * column, per layer) or none; the last entry is the column's head logits.
   */
  private column(
    c: number,
    x: tf.Tensor,
    training: boolean,
    sources: tf.Tensor[][] | null,
  ): { outputs: tf.Tensor[]; logits: tf.Tensor2D } {
    const col = this.columns[c];
    const outputs: tf.Tensor[] = [];
    let h = x;
    this.specs.forEach((spec, l) => {
      let pre = linear(h, col.layers[l].weight, col.layers[l].bias);
      const lat = col.laterals[l];
      if (sources && lat)
        pre = tf.add(
          pre,
          this.lateral(
            lat,
            sources.map((s) => s[l - 1]),
          ),
        );
      h = dropoutPool(spec, tf.relu(pre), training, this.dropout);
      outputs.push(h);
    });
    let logits = linear(h, col.head.weight, col.head.bias) as tf.Tensor2D;
    if (sources && col.headLateral && this.options.headLateral) {
      logits = tf.add(
        logits,
        this.lateral(
          col.headLateral,
          sources.map((s) => s[s.length - 1]),
        ),
      ) as tf.Tensor2D;
    }
    return { outputs, logits };
  }

  /** Logits of task `task`, through its column with laterals from columns 0..task-1. */
  logits(x: tf.Tensor, task: number, training: boolean): tf.Tensor2D {
    const input = this.dropout.apply(x, this.base.inputDropout, training);
    const sources: tf.Tensor[][] = [];
    for (let j = 0; j < task; j++) {
      // reference: sources are plain columns; full recursion: each with its own laterals
      sources.push(
        this.column(j, input, training, this.options.fullRecursion && j > 0 ? sources.slice(0, j) : null).outputs,
      );
    }
    return this.column(task, input, training, task > 0 ? sources : null).logits;
  }

  /** Column t's own variables: its layers, head and lateral adapters. */
  columnVariables(t: number): tf.Variable[] {
    const col = this.columns[t];
    const dense = (d: Dense) => [d.weight, d.bias];
    const lateral = (l: Lateral | null) => (l ? [l.alpha, ...dense(l.reduce), ...dense(l.map)] : []);
    return [
      ...col.layers.flatMap(dense),
      ...dense(col.head),
      ...col.laterals.flatMap(lateral),
      ...lateral(col.headLateral),
    ];
  }
  variables(): tf.Variable[] {
    return this.columns.flatMap((_, t) => this.columnVariables(t));
  }
  parameterCount(): number {
    const alphas = this.columns.reduce(
      (n, c) => n + [...c.laterals, c.headLateral].reduce((m, l) => m + (l ? l.alpha.size : 0), 0),
      0,
    );
    return this.variables().reduce((n, v) => n + v.size, 0) - alphas;
  }
  describe(): ModelDescription {
    return {
      parameters: this.parameterCount(),
      embeddings: 0,
      layers: this.specs,
      columns: this.columns.length,
      perColumn: this.columns.map((_, t) => this.columnVariables(t).reduce((n, v) => n + v.size, 0)),
      ...this.options,
    };
  }
  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}

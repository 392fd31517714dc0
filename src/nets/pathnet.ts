/**
 * PathNet's modular trunk (spec §3.4): the base network's 5 (or, for MLPs, its) hidden layers, each made of M
 * independent modules, a module being a scaled copy of the layer with ⌊widthFactor · units⌋ units. A path
 * picks N modules per layer; the layer's output is the sum of its chosen modules' outputs, each module doing
 * op → ReLU → dropout → (pool). One linear head per task reads the last layer's module-sized output.
 *
 * The N modules of a layer run as one op: their weights are concatenated along the output axis, and the
 * per-module outputs are summed after ReLU/dropout/pool (which act per unit, so this is exact).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../core/rng';
import { type ModelDescription, type NetworkConfig, scaledLayerSpecs } from './config';
import { type LayerSpec, layerGeometry } from './geometry';
import { type Model, initBias, initWeights, nextModelPrefix, ownedVariable } from './network';
import { Dropout, flatten, hiddenLayer, linear } from './ops';

export interface PathNetOptions {
  /** Modules per layer (16). */
  modules: number;
  /** Modules per layer on a path (3). */
  active: number;
  /** Module width as a fraction of the base layer's units (0.258: parameter-matched AlexNet). */
  widthFactor: number;
}

/** A path: for every layer, the indices of its active modules. */
export type Path = number[][];

interface Module {
  weight: tf.Variable;
  bias: tf.Variable;
}

export interface ModuleLayer {
  spec: LayerSpec;
  modules: Module[];
}

/** Module-sized layer specs derived from the base network's layers. */
export function pathnetLayerSpecs(base: NetworkConfig, widthFactor: number): LayerSpec[] {
  return scaledLayerSpecs(base, (layer) => widthFactor * layer.units);
}

export class PathNetModel implements Model {
  readonly prefix = nextModelPrefix('pathnet');
  readonly layers: ModuleLayer[];
  readonly heads: Module[];
  readonly dropout: Dropout;

  constructor(
    readonly base: NetworkConfig,
    readonly options: PathNetOptions,
    seed: number | string,
  ) {
    const rng = new Rng(`init/pathnet/${seed}`);
    this.dropout = new Dropout(String(seed));
    this.layers = pathnetLayerSpecs(base, options.widthFactor).map((spec) => {
      const { shape, fanIn, fanOut } = layerGeometry(spec);
      const modules = Array.from({ length: options.modules }, (_, m) => ({
        weight: ownedVariable(
          initWeights(rng, base.init, shape, fanIn, fanOut),
          `${this.prefix}/${spec.name}/m${m}/weight`,
        ),
        bias: ownedVariable(initBias(rng, base.init, spec.units, fanIn), `${this.prefix}/${spec.name}/m${m}/bias`),
      }));
      return { spec, modules };
    });
    const last = this.layers[this.layers.length - 1].spec.units;
    this.heads = base.heads.map((n, t) => ({
      weight: ownedVariable(initWeights(rng, base.init, [last, n], last, n), `${this.prefix}/head${t}/weight`),
      bias: ownedVariable(initBias(rng, base.init, n, last), `${this.prefix}/head${t}/bias`),
    }));
  }

  /** Trunk output along a path. */
  features(x: tf.Tensor, path: Path, training: boolean): tf.Tensor2D {
    let h = this.dropout.apply(x, this.base.inputDropout, training);
    this.layers.forEach((layer, l) => {
      const { kind, units } = layer.spec;
      const chosen = path[l].map((m) => layer.modules[m]);
      const n = chosen.length;
      const axis = kind === 'conv' ? 3 : 1;
      const weight =
        n === 1
          ? chosen[0].weight
          : tf.concat(
              chosen.map((m) => m.weight),
              axis,
            );
      const bias = n === 1 ? chosen[0].bias : tf.concat(chosen.map((m) => m.bias));
      let y = hiddenLayer(layer.spec, h, weight, bias, training, this.dropout, { inputGrad: l > 0 });
      if (n > 1) {
        // channel/feature index = module * units + unit: split the module axis out and sum over it
        y = tf.sum(tf.reshape(y, [...y.shape.slice(0, -1), n, units]), y.rank - 1);
      }
      h = y;
    });
    return flatten(h);
  }

  logits(h: tf.Tensor2D, task: number): tf.Tensor2D {
    const head = this.heads[task];
    return linear(h, head.weight, head.bias) as tf.Tensor2D;
  }

  moduleVariables(layer: number, module: number): tf.Variable[] {
    const m = this.layers[layer].modules[module];
    return [m.weight, m.bias];
  }
  headVariables(task: number): tf.Variable[] {
    return [this.heads[task].weight, this.heads[task].bias];
  }
  variables(): tf.Variable[] {
    return [
      ...this.layers.flatMap((l) => l.modules.flatMap((m) => [m.weight, m.bias])),
      ...this.heads.flatMap((h) => [h.weight, h.bias]),
    ];
  }
  parameterCount(): number {
    return this.variables().reduce((n, v) => n + v.size, 0);
  }
  describe(): ModelDescription {
    return {
      parameters: this.parameterCount(),
      embeddings: 0,
      layers: this.layers.map((l) => l.spec),
      modules: this.options.modules,
      active: this.options.active,
      widthFactor: this.options.widthFactor,
    };
  }
  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}

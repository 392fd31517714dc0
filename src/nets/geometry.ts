/**
 * Which parameters a unit touches (no TensorFlow): the one description of how a trunk's layers connect,
 * asked by HAT's gradient masks (approaches/hat/masks.ts), the weight-usage statistics (analysis/usage.ts)
 * and the scaled trunks of PathNet and PNN (nets/config.ts).
 *
 * Layout is NHWC, so a dense layer reading a flattened conv map sees the map channel-last: its input j comes
 * from channel j % C of the layer below, and every channel feeds H·W inputs. (The spec's NCHW flatten is the
 * same network up to a permutation of fc1's inputs.)
 */

export interface LayerSpec {
  name: string;
  kind: 'conv' | 'dense';
  /** Input features (dense) or input channels (conv). */
  inputs: number;
  /** Output neurons or channels. */
  units: number;
  /** Square kernel size (conv). */
  kernel?: number;
  /** Dropout rate after the ReLU (0 = none). */
  dropout: number;
  /** 2x2 max-pool after dropout (conv). */
  pool: boolean;
}

/** Weight shape ([k, k, in, out] or [in, out]) and fans of a layer (fan_in = in·k·k for a conv). */
export function layerGeometry(spec: LayerSpec): { shape: number[]; fanIn: number; fanOut: number } {
  const { kind, inputs, units, kernel = 1 } = spec;
  return kind === 'conv'
    ? { shape: [kernel, kernel, inputs, units], fanIn: inputs * kernel * kernel, fanOut: units * kernel * kernel }
    : { shape: [inputs, units], fanIn: inputs, fanOut: units };
}

/** Weights per (output unit, input) pair: kh·kw for a conv, 1 for a dense layer. */
export function taps(spec: LayerSpec): number {
  return spec.kind === 'conv' ? (spec.kernel ?? 1) ** 2 : 1;
}

/** Weights of a layer (biases excluded). */
export function weightCount(spec: LayerSpec): number {
  return spec.units * spec.inputs * taps(spec);
}

/**
 * Inputs of layer l that each unit of layer l−1 feeds: H·W for a dense layer reading a flattened conv map,
 * else 1. Input j of layer l reads unit `j % units(l−1)` of the layer below (channel-last flatten).
 */
export function inputsPerUnitBelow(layers: readonly LayerSpec[], l: number): number {
  if (l === 0) return 1;
  const spec = layers[l];
  const below = layers[l - 1];
  return spec.kind === 'dense' && below.kind === 'conv' ? spec.inputs / below.units : 1;
}

/**
 * Weights of layer l whose output unit is active and whose input unit (of layer l−1) is active too; the
 * first layer reads raw data, so only its output unit counts (spec §2.6, §8.5).
 */
export function activeWeights(layers: readonly LayerSpec[], l: number, activeOut: number, activeBelow: number): number {
  const spec = layers[l];
  const inputs = l === 0 ? spec.inputs : activeBelow * inputsPerUnitBelow(layers, l);
  return activeOut * inputs * taps(spec);
}

/**
 * The paper's networks as configurations (spec §3; no TensorFlow): the AlexNet-like trunk, the MLPs, each
 * approach's variant of them, and width-scaled copies for PathNet's modules and PNN's columns.
 */
import type { NetworkVariant } from '../approaches/catalog';
import { type LayerSpec, inputsPerUnitBelow } from './geometry';

/** Weight initialisations: PyTorch's defaults (the reference code) or Xavier (the paper's text). */
export const INIT_SCHEMES = ['pytorch', 'xavier'] as const;
export type InitScheme = (typeof INIT_SCHEMES)[number];
export type EmbeddingInit = 'normal' | 'uniform';
export type NetworkKind = 'mlp' | 'alexnet';

export interface NetworkConfig {
  kind: NetworkKind;
  /** Per-sample input shape: [784] or [32, 32, 3]. */
  inputShape: number[];
  /** Dropout on the raw input (HAT's MLP: 0.2). */
  inputDropout: number;
  layers: LayerSpec[];
  /** Number of classes of every task's head. */
  heads: number[];
  /** Give every hidden layer HAT task embeddings and gates. */
  hat: boolean;
  /** N(0,1) (HAT) or U(0,2) (compression variant, spec §9). */
  embeddingInit: EmbeddingInit;
  /** PyTorch-0.2 uniform (reference code, default) or Xavier uniform (paper text). */
  init: InitScheme;
}

/** MLP of spec §3.2. HAT: 784-2000-2000, input dropout 0.2; baselines: 784-800-800-800. */
export function mlpConfig(opts: {
  heads: number[];
  hat: boolean;
  hidden?: number[];
  inputDropout?: number;
  dropout?: number;
  inputSize?: number;
  init?: InitScheme;
  embeddingInit?: EmbeddingInit;
}): NetworkConfig {
  const hidden = opts.hidden ?? (opts.hat ? [2000, 2000] : [800, 800, 800]);
  if (hidden.length < 1) throw new Error('an MLP needs at least one hidden layer');
  const inputSize = opts.inputSize ?? 784;
  return {
    kind: 'mlp',
    inputShape: [inputSize],
    inputDropout: opts.inputDropout ?? (opts.hat ? 0.2 : 0),
    layers: hidden.map((units, i) => ({
      name: `fc${i + 1}`,
      kind: 'dense',
      inputs: i === 0 ? inputSize : hidden[i - 1],
      units,
      dropout: opts.dropout ?? 0.5,
      pool: false,
    })),
    heads: opts.heads,
    hat: opts.hat,
    embeddingInit: opts.embeddingInit ?? 'normal',
    init: opts.init ?? 'pytorch',
  };
}

/** AlexNet-like trunk of spec §3.1 for size x size x channels inputs. */
export function alexnetConfig(opts: {
  heads: number[];
  hat: boolean;
  size?: number;
  channels?: number;
  width?: number;
  fc2Dropout?: number;
  init?: InitScheme;
  embeddingInit?: EmbeddingInit;
}): NetworkConfig {
  const size = opts.size ?? 32;
  const channels = opts.channels ?? 3;
  const w = opts.width ?? 1;
  const k = [Math.floor(size / 8), Math.floor(size / 10), 2];
  const convs = [64, 128, 256].map((c) => Math.floor(c * w));
  const fcs = [2048, 2048].map((c) => Math.floor(c * w));
  let side = size;
  for (const kk of k) side = Math.floor((side - kk + 1) / 2);
  const layers: LayerSpec[] = [
    { name: 'conv1', kind: 'conv', inputs: channels, units: convs[0], kernel: k[0], dropout: 0.2, pool: true },
    { name: 'conv2', kind: 'conv', inputs: convs[0], units: convs[1], kernel: k[1], dropout: 0.2, pool: true },
    { name: 'conv3', kind: 'conv', inputs: convs[1], units: convs[2], kernel: k[2], dropout: 0.5, pool: true },
    { name: 'fc1', kind: 'dense', inputs: convs[2] * side * side, units: fcs[0], dropout: 0.5, pool: false },
    { name: 'fc2', kind: 'dense', inputs: fcs[0], units: fcs[1], dropout: opts.fc2Dropout ?? 0.5, pool: false },
  ];
  return {
    kind: 'alexnet',
    inputShape: [size, size, channels],
    inputDropout: 0,
    layers,
    heads: opts.heads,
    hat: opts.hat,
    embeddingInit: opts.embeddingInit ?? 'normal',
    init: opts.init ?? 'pytorch',
  };
}

/** A trained model as the result file records it: parameter count, trunk layers and approach-specific structure. */
export interface ModelDescription {
  parameters: number;
  embeddings: number;
  /** The trunk's layers (PathNet: one module's; PNN: one column's). */
  layers: LayerSpec[];
  [detail: string]: unknown;
}

export interface NetworkOptions {
  /** MLP hidden widths (default: HAT 2000,2000; baselines 800,800,800). */
  hidden?: number[];
  init?: InitScheme;
  embeddingInit?: EmbeddingInit;
}

/** The network variant an approach uses in an experiment (spec §3). */
export function networkConfigFor(
  variant: Exclude<NetworkVariant, 'none'>,
  kind: NetworkKind,
  inputShape: number[],
  heads: number[],
  opts: NetworkOptions = {},
): NetworkConfig {
  const hat = variant === 'hat';
  const common = { heads, hat, init: opts.init, embeddingInit: opts.embeddingInit };
  const config =
    kind === 'mlp'
      ? mlpConfig({ ...common, hidden: opts.hidden, inputSize: inputShape.reduce((a, b) => a * b, 1) })
      : alexnetConfig({ ...common, size: inputShape[0], channels: inputShape[2] });
  if (variant === 'lfl') {
    // LFL's trunk: no dropout on the last hidden layer, whose activation the penalty compares (spec §3.4)
    const last = config.layers.length - 1;
    config.layers = config.layers.map((l, i) => (i === last ? { ...l, dropout: 0 } : l));
  }
  return config;
}

/**
 * The base network's layers with new widths (PathNet's modules, PNN's columns): each layer's inputs follow
 * the new width of the layer below; a dense layer after a conv reads (spatial positions) × (channels).
 */
export function scaledLayerSpecs(base: NetworkConfig, width: (layer: LayerSpec) => number): LayerSpec[] {
  const specs: LayerSpec[] = [];
  base.layers.forEach((layer, l) => {
    const units = Math.max(1, Math.floor(width(layer)));
    const inputs = l === 0 ? layer.inputs : inputsPerUnitBelow(base.layers, l) * specs[l - 1].units;
    specs.push({ ...layer, inputs, units });
  });
  return specs;
}

/** HAT's embeddings are clamped to [-6, 6] after every step (reference code); new rows start clamped. */
export const EMBEDDING_CLAMP = 6;

/**
 * The paper's metrics (spec §7): forgetting ratio against the random and joint references, its mean over
 * the tasks learnt so far, average accuracy, and HAT's capacity (weight) usage per layer (spec §8.5).
 */
import { LayerSpec } from './nets/network';

/** rho[t][u] = (acc[t][u] - A_R[u]) / (A_J[t][u] - A_R[u]) - 1 for u <= t. */
export function forgettingRatios(acc: number[][], randomAcc: number[], jointAcc: number[][]): number[][] {
  return acc.map((row, t) =>
    row.slice(0, t + 1).map((a, u) => {
      const r = randomAcc[u];
      const j = jointAcc[t]?.[u];
      if (j === undefined || r === undefined) throw new Error(`forgetting ratio: no reference for task ${u} after ${t + 1} tasks`);
      return (a - r) / (j - r) - 1;
    }),
  );
}

/** Mean of the first t+1 entries of every row t: rho^{<=t} (or A^{<=t} for an accuracy matrix). */
export function meanUpTo(matrix: number[][]): number[] {
  return matrix.map((row, t) => row.slice(0, t + 1).reduce((a, b) => a + b, 0) / (t + 1));
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n-1); 0 for a single value. */
export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

export interface LayerUsage {
  layer: string;
  /** Units whose gate is active (> 0.5). */
  activeUnits: number;
  units: number;
  /** Weights whose input and output units are both active (first layer: output only). */
  activeWeights: number;
  weights: number;
}

/**
 * Weight usage of binarised gates per layer (spec §8.5): a weight counts when its output unit and its input
 * unit are active; conv weights count kh*kw each; fc1's flattened inputs map to conv3 channels.
 */
export function weightUsage(layers: LayerSpec[], gates: ArrayLike<number>[], threshold = 0.5): LayerUsage[] {
  const active = gates.map((g) => Array.from(g, (v) => v > threshold));
  return layers.map((spec, l) => {
    const k2 = spec.kind === 'conv' ? (spec.kernel ?? 1) ** 2 : 1;
    const out = active[l].filter(Boolean).length;
    let inputs = spec.inputs;
    if (l > 0) {
      const prev = layers[l - 1];
      const prevActive = active[l - 1].filter(Boolean).length;
      // a dense layer after a conv reads prev.units channels x (inputs / prev.units) positions
      inputs = spec.kind === 'dense' && prev.kind === 'conv' ? prevActive * (spec.inputs / prev.units) : prevActive;
    }
    return { layer: spec.name, activeUnits: out, units: spec.units, activeWeights: out * inputs * k2, weights: spec.units * spec.inputs * k2 };
  });
}

/** Network-wide fraction of gated-layer weights in use. */
export function totalUsage(usage: LayerUsage[]): number {
  return usage.reduce((a, u) => a + u.activeWeights, 0) / usage.reduce((a, u) => a + u.weights, 0);
}

/** Elementwise max of gate vectors (cumulative attention). */
export function cumulativeMax(gates: ArrayLike<number>[][]): number[][] {
  const acc = gates[0].map((g) => Array.from(g));
  for (const task of gates.slice(1)) task.forEach((g, l) => { for (let i = 0; i < g.length; i++) acc[l][i] = Math.max(acc[l][i], g[i]); });
  return acc;
}

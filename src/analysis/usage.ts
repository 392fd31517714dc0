/**
 * HAT's capacity usage (spec §8.5): which weights the binarised gates keep, per layer and network-wide,
 * counted with the trunk's geometry (nets/geometry.ts). No TensorFlow.
 */
import { type LayerSpec, activeWeights, weightCount } from '../nets/geometry';

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
export function weightUsage(
  layers: readonly LayerSpec[],
  gates: readonly ArrayLike<number>[],
  threshold = 0.5,
): LayerUsage[] {
  const active = gates.map((g) => Array.from(g).filter((v) => v > threshold).length);
  return layers.map((spec, l) => ({
    layer: spec.name,
    activeUnits: active[l],
    units: spec.units,
    activeWeights: activeWeights(layers, l, active[l], l > 0 ? active[l - 1] : 0),
    weights: weightCount(spec),
  }));
}

/** Network-wide fraction of gated-layer weights in use. */
export function totalUsage(usage: LayerUsage[]): number {
  return usage.reduce((a, u) => a + u.activeWeights, 0) / usage.reduce((a, u) => a + u.weights, 0);
}

/** Elementwise max of gate vectors (cumulative attention). */
export function cumulativeMax(gates: readonly (readonly ArrayLike<number>[])[]): number[][] {
  const acc = gates[0].map((g) => Array.from(g));
  for (const task of gates.slice(1)) {
    task.forEach((g, l) => {
      for (let i = 0; i < g.length; i++) acc[l][i] = Math.max(acc[l][i], g[i]);
    });
  }
  return acc;
}

/** Gate values quantised to bytes (round(255 g)) and base64-encoded: compact per-epoch gate logs. */
export function encodeGates(g: ArrayLike<number>): string {
  const bytes = new Uint8Array(g.length);
  for (let i = 0; i < g.length; i++) bytes[i] = Math.round(255 * Math.min(1, Math.max(0, g[i])));
  return Buffer.from(bytes).toString('base64');
}

export function decodeGates(s: string): number[] {
  return Array.from(Buffer.from(s, 'base64'), (b) => b / 255);
}

export interface UnitUsage {
  layer: string;
  units: number;
  /** Fraction of the layer's units each task's binarised gates use. */
  perTask: number[];
  /** Fraction used by at least one task, and what is still free for new tasks. */
  used: number;
  free: number;
}

/** Per layer: the units each task uses (gate > threshold), all tasks together, and what is left (`hat capacity`). */
export function unitUsage(
  layers: readonly { name: string; units: number }[],
  taskGates: readonly (readonly ArrayLike<number>[])[],
  threshold = 0.5,
): UnitUsage[] {
  return layers.map((spec, l) => {
    const active = taskGates.map((g) => Array.from(g[l], (v) => v > threshold));
    const any = Array.from({ length: spec.units }, (_, i) => active.some((a) => a[i]));
    const used = any.filter(Boolean).length / spec.units;
    return {
      layer: spec.name,
      units: spec.units,
      perTask: active.map((a) => a.filter(Boolean).length / spec.units),
      used,
      free: 1 - used,
    };
  });
}

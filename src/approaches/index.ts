/** Registry of approaches: id -> description, hyperparameters (spec defaults) and constructor. */
import { NetworkKind } from '../data/experiments';
import { Network, NetworkConfig, alexnetConfig, mlpConfig, InitScheme } from '../nets/network';
import { Approach, Hyper, HyperValue } from './approach';
import { Hat } from './hat';
import { Joint } from './joint';
import { RandomGuess } from './random';
import { Sgd } from './sgd';
import { SgdFrozen } from './sgd-frozen';
import { SgdRestart } from './sgd-restart';

export interface ParameterDef {
  default: HyperValue;
  help: string;
  /** Values of the spec's search grid. */
  grid?: HyperValue[];
}

export interface ApproachDef {
  id: string;
  label: string;
  help: string;
  /** Uses the HAT network variant (gated, HAT's MLP sizes). */
  hatNetwork: boolean;
  parameters: Record<string, ParameterDef>;
  create(net: Network | null, hyper: Hyper, seed: number): Approach;
}

const CLIP: ParameterDef = { default: 10000, help: 'gradient clipping: max global L2 norm' };

export const APPROACHES: Record<string, ApproachDef> = {
  hat: {
    id: 'hat', label: 'HAT', hatNetwork: true,
    help: 'hard attention to the task (the paper\'s method)',
    parameters: {
      smax: { default: 400, help: 'stability: largest gate scale s', grid: [25, 50, 100, 200, 400, 800] },
      c: { default: 0.75, help: 'compressibility: weight of the capacity regulariser', grid: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 4] },
      schedule: { default: 'code', help: 's annealing within an epoch: code (by sample index, reference) or paper (by batch index)' },
      clipNorm: CLIP,
    },
    create: (net, h) => new Hat(net!, { smax: Number(h.smax), c: Number(h.c), schedule: h.schedule as 'code' | 'paper', clipNorm: Number(h.clipNorm) }),
  },
  sgd: {
    id: 'sgd', label: 'SGD', hatNetwork: false, help: 'keep training the same network on each task',
    parameters: { clipNorm: CLIP }, create: (net, h) => new Sgd(net!, { clipNorm: Number(h.clipNorm) }),
  },
  'sgd-frozen': {
    id: 'sgd-frozen', label: 'SGD-F', hatNetwork: false, help: 'train all on the first task, then only the heads',
    parameters: { clipNorm: CLIP }, create: (net, h) => new SgdFrozen(net!, { clipNorm: Number(h.clipNorm) }),
  },
  'sgd-restart': {
    id: 'sgd-restart', label: 'SGD-R', hatNetwork: false, help: 'reset to the initial weights before every task',
    parameters: { clipNorm: CLIP }, create: (net, h) => new SgdRestart(net!, { clipNorm: Number(h.clipNorm) }),
  },
  joint: {
    id: 'joint', label: 'Joint', hatNetwork: false, help: 'multitask reference: retrain from scratch on all tasks so far (needed by the forgetting ratio)',
    parameters: { clipNorm: CLIP }, create: (net, h) => new Joint(net!, { clipNorm: Number(h.clipNorm) }),
  },
  random: {
    id: 'random', label: 'Random', hatNetwork: false, help: 'stratified random guessing (needed by the forgetting ratio)',
    parameters: {}, create: (_net, _h, seed) => new RandomGuess(seed),
  },
};

export class OptionError extends Error {
  override name = 'OptionError';
}

export function approachDef(id: string): ApproachDef {
  const def = APPROACHES[id];
  if (!def) throw new OptionError(`unknown approach '${id}'; choose one of ${Object.keys(APPROACHES).join(', ')}`);
  return def;
}

/** Parses "k=v" items (also comma-separated) against an approach's parameters; values typed like the defaults. */
export function parseParameters(id: string, items: string[]): Hyper {
  const def = approachDef(id);
  const hyper: Hyper = Object.fromEntries(Object.entries(def.parameters).map(([k, p]) => [k, p.default]));
  for (const item of items.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq < 1) throw new OptionError(`--parameter '${item}' is not of the form name=value`);
    const key = item.slice(0, eq);
    const raw = item.slice(eq + 1);
    const p = def.parameters[key];
    if (!p) {
      const known = Object.keys(def.parameters);
      throw new OptionError(`approach ${id} has no parameter '${key}'${known.length ? `; its parameters: ${known.join(', ')}` : ' (it takes none)'}`);
    }
    if (typeof p.default === 'number') {
      const v = Number(raw);
      if (!Number.isFinite(v)) throw new OptionError(`parameter ${key} must be a number, got '${raw}'`);
      hyper[key] = v;
    } else if (typeof p.default === 'boolean') {
      if (!['true', 'false'].includes(raw)) throw new OptionError(`parameter ${key} must be true or false, got '${raw}'`);
      hyper[key] = raw === 'true';
    } else hyper[key] = raw;
  }
  return hyper;
}

export interface NetworkOptions {
  /** MLP hidden widths (default: HAT 2000,2000; baselines 800,800,800). */
  hidden?: number[];
  init?: InitScheme;
}

/** The network an approach uses in an experiment (spec §3). */
export function networkConfigFor(def: ApproachDef, kind: NetworkKind, inputShape: number[], heads: number[], opts: NetworkOptions = {}): NetworkConfig {
  if (kind === 'mlp') {
    return mlpConfig({ heads, hat: def.hatNetwork, hidden: opts.hidden, inputSize: inputShape.reduce((a, b) => a * b, 1), init: opts.init });
  }
  return alexnetConfig({ heads, hat: def.hatNetwork, size: inputShape[0], channels: inputShape[2], init: opts.init });
}

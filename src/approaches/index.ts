/** Registry of approaches: id -> description, network variant, hyperparameters (spec defaults and grids) and constructor. */
import { NetworkKind } from '../data/experiments';
import { Network, NetworkConfig, alexnetConfig, mlpConfig, InitScheme } from '../nets/network';
import { PathNetModel } from '../nets/pathnet';
import { ProgressiveModel } from '../nets/progressive';
import { Approach, Hyper, HyperValue } from './approach';
import { Ewc } from './ewc';
import { Hat } from './hat';
import { ImmMean } from './imm-mean';
import { ImmMode } from './imm-mode';
import { Joint } from './joint';
import { Lfl } from './lfl';
import { Lwf } from './lwf';
import { PathNet } from './pathnet';
import { Progressive } from './progressive';
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

/**
 * Which network an approach starts from (spec §3): HAT's gated variant, the baselines' plain one, LFL's
 * (no dropout on the last hidden layer), or none (`random`). PathNet and PNN derive their modules and
 * columns from the plain one.
 */
export type NetworkVariant = 'hat' | 'baseline' | 'lfl' | 'none';

export interface ApproachContext {
  /** The approach's network variant for the experiment (null for 'none'). */
  config: NetworkConfig | null;
  hyper: Hyper;
  seed: number;
}

export interface ApproachDef {
  id: string;
  label: string;
  help: string;
  network: NetworkVariant;
  parameters: Record<string, ParameterDef>;
  create(ctx: ApproachContext): Approach;
}

const clip = (value: number): ParameterDef => ({ default: value, help: 'gradient clipping: max global L2 norm (spec §5 per approach)' });

function net(ctx: ApproachContext): Network {
  if (!ctx.config) throw new Error('this approach needs a network');
  return new Network(ctx.config, ctx.seed);
}
const num = (h: Hyper, k: string) => Number(h[k]);

export const APPROACHES: Record<string, ApproachDef> = {
  hat: {
    id: 'hat', label: 'HAT', network: 'hat',
    help: 'hard attention to the task (the paper\'s method)',
    parameters: {
      smax: { default: 400, help: 'stability: largest gate scale s', grid: [25, 50, 100, 200, 400, 800] },
      c: { default: 0.75, help: 'compressibility: weight of the capacity regulariser', grid: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 4] },
      schedule: { default: 'code', help: 's annealing within an epoch: code (by sample index, reference) or paper (by batch index)' },
      clipNorm: clip(10000),
    },
    create: (ctx) => new Hat(net(ctx), { smax: num(ctx.hyper, 'smax'), c: num(ctx.hyper, 'c'), schedule: ctx.hyper.schedule as 'code' | 'paper', clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  sgd: {
    id: 'sgd', label: 'SGD', network: 'baseline', help: 'keep training the same network on each task',
    parameters: { clipNorm: clip(10000) }, create: (ctx) => new Sgd(net(ctx), { clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  'sgd-frozen': {
    id: 'sgd-frozen', label: 'SGD-F', network: 'baseline', help: 'train all on the first task, then only the heads',
    parameters: { clipNorm: clip(10000) }, create: (ctx) => new SgdFrozen(net(ctx), { clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  'sgd-restart': {
    id: 'sgd-restart', label: 'SGD-R', network: 'baseline', help: 'reset to the initial weights before every task',
    parameters: { clipNorm: clip(10000) }, create: (ctx) => new SgdRestart(net(ctx), { clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  lwf: {
    id: 'lwf', label: 'LWF', network: 'baseline', help: 'learning without forgetting: distil the old model\'s outputs on earlier heads',
    parameters: {
      lambda: { default: 2, help: 'weight of the distillation terms', grid: [0.1, 0.5, 1, 2, 4, 8, 10] },
      T: { default: 1, help: 'distillation temperature', grid: [0.5, 1, 2, 4] },
      clipNorm: clip(100),
    },
    create: (ctx) => new Lwf(net(ctx), { lambda: num(ctx.hyper, 'lambda'), T: num(ctx.hyper, 'T'), clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  lfl: {
    id: 'lfl', label: 'LFL', network: 'lfl', help: 'less-forgetting learning: keep the last hidden layer close to the old model\'s',
    parameters: {
      lambda: { default: 0.05, help: 'weight of the feature distance', grid: [1e-1, 5e-2, 1e-2, 5e-3, 1e-3, 5e-4, 1e-4, 5e-5] },
      clipNorm: clip(200),
    },
    create: (ctx) => new Lfl(net(ctx), { lambda: num(ctx.hyper, 'lambda'), clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  ewc: {
    id: 'ewc', label: 'EWC', network: 'baseline', help: 'elastic weight consolidation: Fisher-weighted pull towards the previous weights',
    parameters: {
      lambda: { default: 5000, help: 'weight of the EWC penalty', grid: [500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4] },
      clipNorm: clip(100),
    },
    create: (ctx) => new Ewc(net(ctx), { lambda: num(ctx.hyper, 'lambda'), clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  'imm-mean': {
    id: 'imm-mean', label: 'IMM-MEAN', network: 'baseline', help: 'incremental moment matching, mean: L2-transfer, then average with the previous weights',
    parameters: {
      r: { default: 1e-4, help: 'weight of the L2-transfer penalty', grid: [1e-2, 5e-3, 1e-3, 5e-4, 1e-4, 5e-5, 1e-6] },
      clipNorm: clip(10000),
    },
    create: (ctx) => new ImmMean(net(ctx), { r: num(ctx.hyper, 'r'), clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  'imm-mode': {
    id: 'imm-mode', label: 'IMM-MODE', network: 'baseline',
    help: 'incremental moment matching, mode: L2-transfer, then Fisher-weighted merge with the previous weights',
    parameters: {
      lambda: { default: 0.01, help: 'weight of the L2-transfer penalty', grid: [10, 1, 0.1, 1e-2, 1e-3, 1e-4, 1e-5] },
      merge: { default: true, help: 'apply the Fisher-weighted merge (the paper\'s method); false = the reference code, whose merge never changes the weights (its published numbers)' },
      clipNorm: clip(1000),
    },
    create: (ctx) => new ImmMode(net(ctx), { lambda: num(ctx.hyper, 'lambda'), merge: ctx.hyper.merge === true, clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  pathnet: {
    id: 'pathnet', label: 'PATHNET', network: 'baseline', help: 'PathNet: evolve paths through modular layers, freeze each task\'s best path',
    parameters: {
      generations: { default: 20, help: 'generations per task (epochs per path per generation = nepochs/generations)', grid: [5, 10, 20, 50, 100, 200] },
      paths: { default: 2, help: 'candidate paths P' },
      modules: { default: 16, help: 'modules per layer M' },
      active: { default: 3, help: 'modules per layer on a path N' },
      widthFactor: { default: 0.258, help: 'module width as a fraction of the base layer (0.258 matches the AlexNet\'s parameters)' },
      clipNorm: clip(1000),
    },
    create: (ctx) => {
      if (!ctx.config) throw new Error('pathnet needs a network');
      const model = new PathNetModel(ctx.config, { modules: num(ctx.hyper, 'modules'), active: num(ctx.hyper, 'active'), widthFactor: num(ctx.hyper, 'widthFactor') }, ctx.seed);
      return new PathNet(model, ctx.seed, { generations: num(ctx.hyper, 'generations'), paths: num(ctx.hyper, 'paths'), clipNorm: num(ctx.hyper, 'clipNorm') });
    },
  },
  progressive: {
    id: 'progressive', label: 'PNN', network: 'baseline', help: 'progressive networks: a new column per task with lateral adapters, earlier columns frozen',
    parameters: {
      widthFactor: { default: 1.117, help: 'column width = widthFactor x base width / tasks (1.117 matches the AlexNet\'s parameters)' },
      fullRecursion: { default: false, help: 'laterals read earlier columns computed with their own laterals; false = as plain columns (reference)' },
      headLateral: { default: true, help: 'add the lateral into the head (spec); false = the reference, whose head adapters never reach the loss' },
      clipNorm: clip(10000),
    },
    create: (ctx) => {
      if (!ctx.config) throw new Error('progressive needs a network');
      const model = new ProgressiveModel(ctx.config, { widthFactor: num(ctx.hyper, 'widthFactor'), fullRecursion: ctx.hyper.fullRecursion === true, headLateral: ctx.hyper.headLateral === true }, ctx.seed);
      return new Progressive(model, { clipNorm: num(ctx.hyper, 'clipNorm') });
    },
  },
  joint: {
    id: 'joint', label: 'Joint', network: 'baseline', help: 'multitask reference: retrain from scratch on all tasks so far (needed by the forgetting ratio)',
    parameters: { clipNorm: clip(10000) }, create: (ctx) => new Joint(net(ctx), { clipNorm: num(ctx.hyper, 'clipNorm') }),
  },
  random: {
    id: 'random', label: 'Random', network: 'none', help: 'stratified random guessing (needed by the forgetting ratio)',
    parameters: {}, create: (ctx) => new RandomGuess(ctx.seed),
  },
};

/** The approaches of the paper's Table 1 plus the two references of the forgetting ratio (random, joint). */
export const TABLE1_APPROACHES = ['random', 'joint', 'sgd', 'sgd-frozen', 'lwf', 'lfl', 'ewc', 'imm-mean', 'imm-mode', 'pathnet', 'progressive', 'hat'];

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
      if (raw.trim() === '' || !Number.isFinite(v)) throw new OptionError(`parameter ${key} must be a number, got '${raw}'`);
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

/** The network variant an approach uses in an experiment (spec §3). */
export function networkConfigFor(def: ApproachDef, kind: NetworkKind, inputShape: number[], heads: number[], opts: NetworkOptions = {}): NetworkConfig {
  const hat = def.network === 'hat';
  const config =
    kind === 'mlp'
      ? mlpConfig({ heads, hat, hidden: opts.hidden, inputSize: inputShape.reduce((a, b) => a * b, 1), init: opts.init })
      : alexnetConfig({ heads, hat, size: inputShape[0], channels: inputShape[2], init: opts.init });
  if (def.network === 'lfl') {
    // LFL's trunk: no dropout on the last hidden layer, whose activation the penalty compares (spec §3.4)
    const last = config.layers.length - 1;
    config.layers = config.layers.map((l, i) => (i === last ? { ...l, dropout: 0 } : l));
  }
  return config;
}

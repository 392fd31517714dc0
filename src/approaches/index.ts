/**
 * The approach registry: the catalog (./catalog.ts: ids, labels, parameters) plus how to build each one on
 * an experiment's network.
 */
import { OptionError } from '../core/errors';
import { type Hyper, parseParams, withDefaults } from '../core/params';
import { type NetworkConfig, type NetworkKind, type NetworkOptions, networkConfigFor } from '../nets/config';
import { Network } from '../nets/network';
import { PathNetModel } from '../nets/pathnet';
import { ProgressiveModel } from '../nets/progressive';
import type { Predictor } from '../training/types';
import { APPROACH_INFO, type ApproachInfo } from './catalog';
import { Ewc } from './ewc';
import { Hat, type HatParams } from './hat/hat';
import { ImmMean } from './imm-mean';
import { ImmMode } from './imm-mode';
import { Joint } from './joint';
import { Lfl } from './lfl';
import { Lwf } from './lwf';
import { PathNet, type PathNetParams } from './pathnet';
import { Progressive, type ProgressiveParams } from './progressive';
import { RandomGuess } from './random';
import { Sgd } from './sgd';
import { SgdFrozen } from './sgd-frozen';
import { SgdRestart } from './sgd-restart';

export interface ApproachContext {
  /** The approach's network variant for the experiment (null for `random`). */
  config: NetworkConfig | null;
  /** Every parameter of the approach (parsed and checked against its schema). */
  params: Hyper;
  seed: number;
}

function net(ctx: ApproachContext): Network {
  if (!ctx.config) throw new Error('this approach needs a network');
  return new Network(ctx.config, ctx.seed);
}
function base(ctx: ApproachContext): NetworkConfig {
  if (!ctx.config) throw new Error('this approach needs a network');
  return ctx.config;
}

type Builder = (ctx: ApproachContext) => Predictor;
// `params` were checked against each approach's schema (parseApproachParams), so the casts are safe
const BUILDERS: Record<string, Builder> = {
  hat: (ctx) => {
    const p = ctx.params as HatParams;
    return new Hat(new Network({ ...base(ctx), embeddingInit: p.embeddingInit }, ctx.seed), p);
  },
  sgd: (ctx) => new Sgd(net(ctx), ctx.params),
  'sgd-frozen': (ctx) => new SgdFrozen(net(ctx), ctx.params),
  'sgd-restart': (ctx) => new SgdRestart(net(ctx), ctx.params),
  lwf: (ctx) => new Lwf(net(ctx), ctx.params),
  lfl: (ctx) => new Lfl(net(ctx), ctx.params),
  ewc: (ctx) => new Ewc(net(ctx), ctx.params),
  'imm-mean': (ctx) => new ImmMean(net(ctx), ctx.params),
  'imm-mode': (ctx) => new ImmMode(net(ctx), ctx.params),
  pathnet: (ctx) => {
    const p = ctx.params as PathNetParams;
    return new PathNet(
      new PathNetModel(base(ctx), { modules: p.modules, active: p.active, widthFactor: p.widthFactor }, ctx.seed),
      ctx.seed,
      p,
    );
  },
  progressive: (ctx) => {
    const p = ctx.params as ProgressiveParams;
    const model = new ProgressiveModel(
      base(ctx),
      { widthFactor: p.widthFactor, fullRecursion: p.fullRecursion, headLateral: p.headLateral },
      ctx.seed,
    );
    return new Progressive(model, p);
  },
  joint: (ctx) => new Joint(net(ctx), ctx.params),
  random: (ctx) => new RandomGuess(ctx.seed),
};

export interface ApproachDef extends ApproachInfo {
  create(ctx: ApproachContext): Predictor;
}

export const APPROACHES: Readonly<Record<string, ApproachDef>> = Object.fromEntries(
  Object.values(APPROACH_INFO).map((info) => [info.id, { ...info, create: BUILDERS[info.id] }]),
);

export function approachDef(id: string): ApproachDef {
  const def = APPROACHES[id];
  if (!def) throw new OptionError(`unknown approach '${id}'; choose one of ${Object.keys(APPROACHES).join(', ')}`);
  return def;
}

/** Every parameter of an approach from "name=value" items (also comma-separated), defaults for the rest. */
export function parseApproachParams(id: string, items: readonly string[]): Hyper {
  return parseParams(approachDef(id).params, items, `approach ${id}`);
}

/** An approach on the network its variant takes for an experiment (spec §3); parameters not given take their defaults. */
export function createApproach(
  id: string,
  opts: {
    kind: NetworkKind;
    inputShape: number[];
    heads: number[];
    network?: NetworkOptions;
    params?: Partial<Hyper>;
    seed: number;
  },
): Predictor {
  const def = approachDef(id);
  const config =
    def.network === 'none' ? null : networkConfigFor(def.network, opts.kind, opts.inputShape, opts.heads, opts.network);
  return def.create({ config, params: withDefaults(def.params, opts.params ?? {}, `approach ${id}`), seed: opts.seed });
}

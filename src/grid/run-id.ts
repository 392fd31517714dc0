/**
 * A run of a grid, normalised: every field that changes its numbers (or what its result file records)
 * spelled out, defaults applied, so that equal runs compare equal. Its id is a hash of that normal form:
 * stable across processes and machines (canonical JSON, sorted keys, sha256), and different for any change
 * of experiment, datasets, approach, parameter value, seed, training option, data cap, network option or
 * monitoring log. Where results go and how they are computed (resDir, dataDir, backend, progress) and the
 * tag (a name) are not part of it. No TensorFlow.
 */
import { createHash } from 'node:crypto';
import { APPROACH_INFO, APPROACH_IDS } from '../approaches/catalog';
import { OptionError } from '../core/errors';
import { type Hyper, parseParams, withDefaults } from '../core/params';
import type { ExperimentName } from '../data/experiments';
import type { InitScheme } from '../nets/config';
import type { MonitorName } from '../runs/monitors';
import type { RunOptions } from '../runs/run';
import type { RunShape } from '../runs/shape';
import { TRAIN_DEFAULTS, type TrainOptions } from '../training/types';

/** A run as a grid holds it: a complete `RunOptions` minus where and how it runs (resDir, dataDir, backend, progress). */
export interface GridRunOptions extends Omit<RunShape, 'init'> {
  experiment: ExperimentName;
  approach: string;
  seed: number;
  /** Every parameter of the approach (defaults filled in). */
  parameters: Hyper;
  /** Every training option (defaults filled in). */
  train: TrainOptions;
  init: InitScheme;
  /** Monitoring logs written into the result file (sorted, no duplicates). */
  monitor: MonitorName[];
  /** Name in file names and tables. */
  tag: string;
}

/** The fields of `RunOptions` that define a run (the rest say where and how it runs). */
export type RunDefinition = Pick<
  RunOptions,
  | 'experiment'
  | 'approach'
  | 'seed'
  | 'parameters'
  | 'train'
  | 'tasks'
  | 'datasets'
  | 'maxTrain'
  | 'maxTest'
  | 'validation'
  | 'hidden'
  | 'init'
  | 'monitor'
>;

/** Every parameter of `approach`, checked against its schema, defaults filled in. */
export function approachParameters(approach: string, given: RunOptions['parameters']): Hyper {
  const info = APPROACH_INFO[approach];
  if (!info) throw new OptionError(`unknown approach '${approach}'; choose one of ${APPROACH_IDS.join(', ')}`);
  return Array.isArray(given)
    ? parseParams(info.params, given, `approach ${approach}`)
    : withDefaults(info.params, given ?? {}, `approach ${approach}`);
}

/** The normal form of a run (without its tag): what its id hashes. */
export function normalRun(o: RunDefinition): Omit<GridRunOptions, 'tag'> {
  const out: Omit<GridRunOptions, 'tag'> = {
    experiment: o.experiment,
    approach: o.approach,
    seed: o.seed,
    parameters: approachParameters(o.approach, o.parameters),
    train: { ...TRAIN_DEFAULTS, ...o.train },
    init: o.init ?? 'pytorch',
    monitor: [...new Set(o.monitor ?? [])].sort(),
  };
  if (o.tasks !== undefined) out.tasks = o.tasks;
  if (o.datasets !== undefined) out.datasets = [...o.datasets];
  if (o.maxTrain !== undefined) out.maxTrain = o.maxTrain;
  if (o.maxTest !== undefined) out.maxTest = o.maxTest;
  if (o.validation !== undefined) out.validation = o.validation;
  if (o.hidden !== undefined) out.hidden = [...o.hidden];
  return out;
}

/** JSON with object keys sorted at every level (arrays keep their order): one text per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`run id: ${value} is not a finite number`);
  return JSON.stringify(value);
}

/** Version of the id's definition: changing what the id covers changes this, so old ids never match new ones. */
const RUN_ID_FORMAT = 'hat-ts/run-id@1';

/** The run's id: 16 hex digits of sha256 over its canonical normal form. */
export function runId(o: RunDefinition): string {
  const normal = normalRun(o);
  const canonical = canonicalJson({
    format: RUN_ID_FORMAT,
    ...normal,
    tasks: normal.tasks ?? null,
    datasets: normal.datasets ?? null,
    maxTrain: normal.maxTrain ?? null,
    maxTest: normal.maxTest ?? null,
    validation: normal.validation ?? null,
    hidden: normal.hidden ?? null,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/**
 * Result files: one self-describing JSON per run (config, environment, data, timings, accuracy and loss
 * matrices, epoch logs, forgetting ratios, and each callback's extras: HAT's mask usage, the monitoring logs),
 * rewritten atomically after every task, plus the spec's plain-text accuracy matrix. One format, versioned;
 * the reader refuses other versions with a message saying what to do. No TensorFlow.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { BackendInfo } from '../backend/index';
import { UserError } from '../core/errors';
import { writeFileAtomic } from '../core/io';
import type { Hyper } from '../core/params';
import type { InitScheme, ModelDescription } from '../nets/config';
import type { TaskLog, TrainOptions } from '../training/types';

export const RESULT_FORMAT = 'hat-ts/run@2';

export class ResultFileError extends UserError {
  override name = 'ResultFileError';
}

/** What defines a run's numbers: two runs with equal protocols are comparable (forgetting references). */
export interface Protocol {
  experiment: string;
  /** Mixture: only these datasets (in the seed's order). */
  datasets?: string[];
  seed: number;
  tasks: number;
  train: TrainOptions;
  maxTrain?: number;
  maxTest?: number;
  validation: number | 'train';
}

export interface RunConfig {
  approach: string;
  /** Name of the approach in tables and file names (approach id, plus non-default parameters). */
  tag: string;
  parameters: Hyper;
  network: { hidden?: number[]; init: InitScheme };
  /** Per-epoch monitoring logs the run keeps (they cost evaluation passes, so they are part of its identity). */
  monitor?: string[];
  protocol: Protocol;
  backendChoice: string;
  dataDir?: string;
}

/** A cached dataset's origin, copied from its manifest (src/data/manifest.ts). */
export interface CacheProvenance {
  variant: string;
  how: 'download' | 'import';
  inputs: { name: string; url?: string; sha256: string; verification: string }[];
  /** sha256 of each cache file. */
  files: Record<string, string>;
}

export interface RunResult {
  format: typeof RESULT_FORMAT;
  status: 'running' | 'complete' | 'failed';
  /** Why a failed run stopped (its error's message): it resumes from its last checkpoint when run again. */
  failure?: { error: string; name: string; time: string };
  config: RunConfig;
  configHash: string;
  environment: {
    backend: BackendInfo;
    node: string;
    platform: string;
    cpus: string;
    cores: number;
    hatTs: string;
    gitCommit?: string;
  };
  data: {
    order: number[];
    missing: string[];
    tasks: {
      name: string;
      classes: number;
      train: number;
      valid: number | 'train';
      test: number;
      source: string;
      cache?: CacheProvenance;
    }[];
  };
  /** The trained model: parameter count, layers, and approach-specific structure (PathNet modules, PNN columns). */
  network: ModelDescription | null;
  timings: { started: string; finished?: string; seconds: number; perTask: number[] };
  /** acc[t][u]: test accuracy of task u after learning task t (0 above the diagonal). */
  accuracy: number[][];
  loss: number[][];
  epochs: TaskLog[];
  /** Present when the random and joint references of the same protocol are in the results folder. */
  forgetting?: { ratios: number[][]; meanUpTo: number[]; references: { random: string; joint: string } };
  averageAccuracy: number[];
  /** The approach's own summary (HAT: its task gates; PathNet: its paths...). */
  summary: Record<string, unknown>;
  /** What the run's callbacks recorded, under each callback's key (runs/monitors.ts). */
  extras: Record<string, unknown>;
}

export function hashConfig(config: RunConfig): string {
  const { backendChoice: _b, dataDir: _d, ...numbersOnly } = config;
  return createHash('sha256').update(JSON.stringify(numbersOnly)).digest('hex').slice(0, 16);
}

export function protocolKey(p: Protocol): string {
  return JSON.stringify([
    p.experiment,
    p.datasets ?? null,
    p.seed,
    p.tasks,
    p.train,
    p.maxTrain ?? null,
    p.maxTest ?? null,
    p.validation,
  ]);
}

export function resultBase(
  resDir: string,
  protocol: Pick<Protocol, 'experiment' | 'datasets' | 'seed'>,
  tag: string,
): string {
  const experiment = protocol.datasets ? `${protocol.experiment}-${protocol.datasets.join('+')}` : protocol.experiment;
  return path.join(resDir, `${experiment}_${tag}_${protocol.seed}`);
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: fs.realpathSync(__dirname),
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return undefined;
  }
}

/** This package's version: the nearest package.json named hat-ts above this file (also when src/ is reached through a link, as from the notebooks). */
function packageVersion(): string {
  for (let dir = fs.realpathSync(__dirname); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'hat-ts' && pkg.version) return pkg.version;
    } catch {
      // no package.json here: keep walking up
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

export function environment(backend: BackendInfo): RunResult['environment'] {
  const cpus = os.cpus();
  return {
    backend,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    cpus: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    hatTs: packageVersion(),
    gitCommit: gitCommit(),
  };
}

/** The spec's T x T text matrix, 4 decimals. */
export function accuracyText(acc: number[][], tasks: number): string {
  return (
    Array.from({ length: acc.length }, (_, t) =>
      Array.from({ length: tasks }, (_, u) => (acc[t]?.[u] ?? 0).toFixed(4)).join('\t'),
    ).join('\n') + '\n'
  );
}

export function writeResult(base: string, result: RunResult): void {
  writeFileAtomic(`${base}.json`, JSON.stringify(result, null, 1));
  writeFileAtomic(`${base}.txt`, accuracyText(result.accuracy, result.data.tasks.length));
}

/**
 * Marks a run's result file failed, with the error's message (status 'failed'; the run resumes from its last
 * checkpoint when started again). Best effort: when the disk that failed the run fails this write too, the file
 * stays as it was.
 */
export function writeFailure(
  base: string,
  result: RunResult,
  e: unknown,
  extras?: () => Record<string, unknown>,
): void {
  const err = e instanceof Error ? e : new Error(String(e));
  result.status = 'failed';
  result.failure = { error: err.message, name: err.name, time: new Date().toISOString() };
  try {
    // what the callbacks know so far (the grid's run id among them: the failed file is the grid's own)
    if (extras) result.extras = extras();
    writeResult(base, result);
  } catch {
    // the original error is what the caller reports
  }
}

/** Reads a result file, refusing anything that is not this version's format with a message naming the file. */
export function readResult(file: string): RunResult {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ResultFileError(`${file} is not a readable JSON result file: ${(e as Error).message.split('\n')[0]}`);
  }
  checkFormat(json, file);
  return json as RunResult;
}

const finite = z.number().refine(Number.isFinite, 'not a finite number');
const count = z.number().int().min(0);
const matrix = z.array(z.array(finite));
/** What the readers (tables, figures, notebooks, the grid) rely on; everything else is free-form. */
const RESULT_SHAPE = z.object({
  status: z.enum(['running', 'complete', 'failed']),
  config: z.object({
    approach: z.string(),
    tag: z.string(),
    parameters: z.record(z.string(), z.unknown()),
    protocol: z.object({ experiment: z.string(), seed: count, tasks: count, train: z.record(z.string(), z.unknown()) }),
  }),
  configHash: z.string(),
  data: z.object({ tasks: z.array(z.object({ name: z.string(), classes: count })) }),
  timings: z.object({ seconds: finite, perTask: z.array(finite.nullable()) }),
  accuracy: matrix,
  loss: z.array(z.array(z.number().nullable())),
  epochs: z.array(z.object({ epochs: z.array(z.unknown()) }).nullable()),
  averageAccuracy: z.array(finite),
  summary: z.record(z.string(), z.unknown()),
  extras: z.record(z.string(), z.unknown()),
});

/** Throws a clear error unless `json` is a result file of this version, with the fields its readers use. */
export function checkFormat(json: unknown, file: string): void {
  const format = (json as { format?: unknown } | null)?.format;
  if (format === RESULT_FORMAT) {
    const r = RESULT_SHAPE.safeParse(json);
    if (r.success) return;
    const issue = r.error.issues[0];
    const where = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
    throw new ResultFileError(
      `${file} is a damaged result file: ${where.replace(/^\./, '') || 'the file'}: ${issue.message}. ` +
        'Run it again (the same `hat run` command) to rewrite it.',
    );
  }
  if (typeof format === 'string' && format.startsWith('hat-ts/run@')) {
    throw new ResultFileError(
      `${file} is a result file of another hat-ts version (format ${format}; this version reads ${RESULT_FORMAT}). ` +
        'Re-run it with this version (the same `hat run` command), or read it with the version that wrote it.',
    );
  }
  throw new ResultFileError(`${file} is not a hat-ts result file (format ${JSON.stringify(format)})`);
}

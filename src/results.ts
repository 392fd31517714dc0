/**
 * Result files: one self-describing JSON per run (config, environment, data, timings, accuracy and loss
 * matrices, epoch logs, forgetting ratios, HAT mask statistics), rewritten atomically after every task,
 * plus the spec's plain-text accuracy matrix.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { BackendInfo } from './backend';
import { writeFileAtomic } from './io';
import { TaskLog, TrainOptions } from './train';
import { Hyper } from './approaches/approach';
import { LayerUsage } from './metrics';
import { ModelDescription } from './nets/network';

export const RESULT_FORMAT = 'hat-ts/run@1';

/** What defines a run's numbers: two runs with equal protocols are comparable (forgetting references). */
export interface Protocol {
  experiment: string;
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
  network: { hidden?: number[]; init: string };
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
  status: 'running' | 'complete';
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
  data: { order: number[]; missing: string[]; tasks: { name: string; classes: number; train: number; valid: number | 'train'; test: number; source: string; cache?: CacheProvenance }[] };
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
  /** HAT: per-task weight usage of its own gates and of the cumulative attention. */
  masks?: { perTask: LayerUsage[][]; cumulative: LayerUsage[][]; totalCumulative: number[] };
  summary: Record<string, unknown>;
}

export function hashConfig(config: RunConfig): string {
  const { backendChoice: _b, dataDir: _d, ...numbersOnly } = config;
  return createHash('sha256').update(JSON.stringify(numbersOnly)).digest('hex').slice(0, 16);
}

export function protocolKey(p: Protocol): string {
  return JSON.stringify([p.experiment, p.seed, p.tasks, p.train, p.maxTrain ?? null, p.maxTest ?? null, p.validation]);
}

export function resultBase(resDir: string, protocol: Protocol, tag: string): string {
  return path.join(resDir, `${protocol.experiment}_${tag}_${protocol.seed}`);
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: fs.realpathSync(__dirname), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return undefined;
  }
}

/** This package's version: the nearest package.json named hat-ts above this file (also when src/ is reached through a link, as from the notebooks). */
function packageVersion(): string {
  for (let dir = fs.realpathSync(__dirname); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'hat-ts' && pkg.version) return pkg.version;
    } catch {
      // no package.json here: keep walking up
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

export function environment(backend: BackendInfo): RunResult['environment'] {
  const cpus = os.cpus();
  return { backend, node: process.version, platform: `${os.platform()} ${os.arch()}`, cpus: cpus[0]?.model ?? 'unknown', cores: cpus.length, hatTs: packageVersion(), gitCommit: gitCommit() };
}

/** The spec's T x T text matrix, 4 decimals. */
export function accuracyText(acc: number[][], tasks: number): string {
  return Array.from({ length: acc.length }, (_, t) => Array.from({ length: tasks }, (_, u) => (acc[t]?.[u] ?? 0).toFixed(4)).join('\t')).join('\n') + '\n';
}

export function writeResult(base: string, result: RunResult): void {
  writeFileAtomic(`${base}.json`, JSON.stringify(result, null, 1));
  writeFileAtomic(`${base}.txt`, accuracyText(result.accuracy, result.data.tasks.length));
}

export function readResult(file: string): RunResult {
  const r = JSON.parse(fs.readFileSync(file, 'utf8')) as RunResult;
  if (r.format !== RESULT_FORMAT) throw new Error(`${file} is not a hat-ts result file (format ${String(r.format)})`);
  return r;
}

/** All complete result files in a folder. */
export function listResults(resDir: string): { file: string; result: RunResult }[] {
  if (!fs.existsSync(resDir)) return [];
  return fs
    .readdirSync(resDir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => {
      try {
        const result = readResult(path.join(resDir, f));
        return result.status === 'complete' ? [{ file: path.join(resDir, f), result }] : [];
      } catch {
        return [];
      }
    });
}

/** The random and joint results of the same protocol, if present. */
export function findReferences(resDir: string, protocol: Protocol): { random?: { file: string; result: RunResult }; joint?: { file: string; result: RunResult } } {
  const key = protocolKey(protocol);
  const same = listResults(resDir).filter((r) => protocolKey(r.result.config.protocol) === key);
  return { random: same.find((r) => r.result.config.approach === 'random'), joint: same.find((r) => r.result.config.approach === 'joint' && r.result.config.tag === 'joint') };
}

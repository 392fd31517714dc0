/**
 * What the results folder says about each run of a grid, from its files alone (so any process, on any
 * machine sharing the folder, sees the same): done (a complete result file written for this run id),
 * partial (a result of this id still `running` and nobody holds its lock: it resumes from its checkpoint),
 * running (a live lock), failed (`NAME.failed.json` of this id), conflict (the result file holds another run),
 * queued (nothing yet). Also the failure records and the grid's event log. No TensorFlow.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../core/io';
import type { GridMeta, GridRun } from './expand';
import { type LockInfo, type LockOptions, readLock, staleReason } from './locks';

export type RunState = 'done' | 'partial' | 'running' | 'failed' | 'conflict' | 'queued';
export const RUN_STATES: readonly RunState[] = ['done', 'running', 'partial', 'failed', 'conflict', 'queued'];

/** What a grid run records in its result file, under extras.grid. */
export interface GridExtras extends GridMeta {
  id: string;
  /** Wall-clock seconds the run took (over all its attempts, without the time it was not running). */
  wallSeconds: number;
  host: string;
}

export interface FailedRecord {
  format: 'hat-ts/grid-failed@1';
  id: string;
  name: string;
  error: string;
  /** The stack of an unexpected error (a bug); absent for errors a user can act on. */
  stack?: string;
  time: string;
  /** 1 for the first failure, then one more per retry. */
  attempt: number;
  host: string;
  pid: number;
  meta: GridMeta;
  log?: string;
}

/** The part of a result file the grid needs (read with a cache: result files can be megabytes). */
export interface ResultGlance {
  status: string;
  id?: string;
  /** The grid that wrote it. */
  grid?: string;
  tasksDone: number;
  tasks: number;
  seconds: number;
  wallSeconds?: number;
  finished?: string;
}

export interface RunStatus {
  state: RunState;
  result?: ResultGlance;
  lock?: LockInfo | null;
  failed?: FailedRecord;
  /** Why a conflict (or a stale lock) is one. */
  note?: string;
}

export const gridDir = (resDir: string): string => path.join(resDir, '.grid');
export const resultFile = (resDir: string, r: Pick<GridRun, 'name'>): string => path.join(resDir, `${r.name}.json`);
export const lockFile = (resDir: string, r: Pick<GridRun, 'name'>): string => path.join(resDir, `${r.name}.lock`);
export const failedFile = (resDir: string, r: Pick<GridRun, 'name'>): string =>
  path.join(resDir, `${r.name}.failed.json`);
export const runLogFile = (resDir: string, r: Pick<GridRun, 'name'>): string =>
  path.join(gridDir(resDir), 'logs', `${r.name}.log`);
export const eventsFile = (resDir: string): string => path.join(gridDir(resDir), 'events.log');

const glanceCache = new Map<string, { mtimeMs: number; size: number; glance: ResultGlance | null }>();

/** Status, id and progress of a result file (undefined when absent, null when unreadable). */
export function glanceResult(file: string): ResultGlance | null | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return undefined;
  }
  const hit = glanceCache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.glance;
  let glance: ResultGlance | null = null;
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      format?: string;
      status?: string;
      accuracy?: unknown[];
      data?: { tasks?: unknown[] };
      timings?: { seconds?: number; finished?: string };
      extras?: { grid?: Partial<GridExtras> };
    };
    if (typeof r.format === 'string' && r.format.startsWith('hat-ts/run@'))
      glance = {
        status: r.status ?? 'unknown',
        id: r.extras?.grid?.id,
        grid: r.extras?.grid?.grid,
        tasksDone: r.accuracy?.length ?? 0,
        tasks: r.data?.tasks?.length ?? 0,
        seconds: r.timings?.seconds ?? 0,
        wallSeconds: r.extras?.grid?.wallSeconds,
        finished: r.timings?.finished,
      };
  } catch {
    glance = null;
  }
  glanceCache.set(file, { mtimeMs: st.mtimeMs, size: st.size, glance });
  return glance;
}

export function readFailed(file: string): FailedRecord | undefined {
  try {
    const f = JSON.parse(fs.readFileSync(file, 'utf8')) as FailedRecord;
    return f.format === 'hat-ts/grid-failed@1' ? f : undefined;
  } catch {
    return undefined;
  }
}

export function writeFailed(resDir: string, record: FailedRecord): void {
  writeFileAtomic(failedFile(resDir, record), JSON.stringify(record, null, 1));
}

/** The state of one run in a results folder. */
export function runStatus(resDir: string, run: GridRun, lockOpts: Pick<LockOptions, 'timeout'>): RunStatus {
  const result = glanceResult(resultFile(resDir, run));
  if (result && result.id === run.id && result.status === 'complete') return { state: 'done', result };
  if (result === null || (result && result.id !== run.id)) {
    return {
      state: 'conflict',
      ...(result ? { result } : {}),
      note:
        `${run.name}.json holds ${result ? (result.id ? `another run (${result.grid ?? 'grid'}, id ${result.id})` : 'a run not written by a grid') : 'something unreadable'}; ` +
        'use another --res-dir, or move that file away',
    };
  }
  const lf = lockFile(resDir, run);
  const lock = readLock(lf);
  if (lock !== undefined && !staleReason(lock, lf, lockOpts))
    return { state: 'running', lock, ...(result ? { result } : {}) };
  const stale = lock !== undefined ? { lock, note: `stale lock: ${staleReason(lock, lf, lockOpts)}` } : {};
  const failed = readFailed(failedFile(resDir, run));
  if (failed && failed.id === run.id) return { state: 'failed', failed, ...stale, ...(result ? { result } : {}) };
  if (result) return { state: 'partial', result, ...stale };
  return { state: 'queued', ...stale };
}

export interface GridEvent {
  event: 'start' | 'takeover' | 'done' | 'failed' | 'lost-lock' | 'worker-died';
  id: string;
  name: string;
  [k: string]: unknown;
}

/** Appends one line to the grid's event log (who started, finished or failed what, and when). */
export function logEvent(resDir: string, e: GridEvent): void {
  const file = eventsFile(resDir);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.appendFileSync(
    file,
    JSON.stringify({ time: new Date().toISOString(), host: os.hostname(), pid: process.pid, ...e }) + '\n',
  );
}

export function readEvents(resDir: string): (GridEvent & { time: string; host: string; pid: number })[] {
  let text: string;
  try {
    text = fs.readFileSync(eventsFile(resDir), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as GridEvent & { time: string; host: string; pid: number }];
      } catch {
        return [];
      }
    });
}

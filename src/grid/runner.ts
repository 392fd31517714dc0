/**
 * The grid runner: one results folder, N local worker processes (`hat grid --worker`, each with its own
 * TensorFlow threads), one progress view. Finished runs are skipped, interrupted ones resume from their
 * checkpoints, failing ones are recorded and the grid goes on; a worker that dies (crash, out of memory) has
 * its run recorded as failed and is replaced while runs are left.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NATIVE_SETTINGS_ENV } from '../backend/settings';
import { fmtTime } from '../training/progress';
import type { ProgressMode } from '../training/progress';
import { checkWritableFolder } from '../core/io';
import { type GridPlan, type GridRun, writePlan } from './expand';
import { LOCK_DEFAULTS, type LockOptions, RUNNER_ENV, readLock } from './locks';
import { GridProgressView, countStates } from './progress';
import {
  type FailedRecord,
  type RunState,
  type RunStatus,
  gridDir,
  lockFile,
  logEvent,
  readFailed,
  failedFile,
  runStatus,
  writeFailed,
} from './state';

/** The `hat` command of this package (bin/hat): workers and Slurm tasks run the same code as their parent. */
export const HAT_BIN = path.resolve(__dirname, '..', '..', 'bin', 'hat');

/**
 * TensorFlow threads per worker when --threads is not given: the cores shared evenly among the workers
 * (undefined = TensorFlow's own default, all cores, for a single worker). Measured on 2 cores (npm run bench):
 * 2 workers x 1 thread train 1.4x (AlexNet) to 1.6x (MLP) the HAT samples/s of 1 x 2 threads (bench/README.md),
 * while a single AlexNet run is faster with 2 threads than with 1.
 */
export function defaultThreads(workers: number, cores = os.availableParallelism()): number | undefined {
  return workers > 1 ? Math.max(1, Math.floor(cores / workers)) : undefined;
}

/**
 * Local workers and their threads for a plan: as asked, else one worker per core but no more than the runs
 * left (so a lone run gets every core's threads), and the cores shared among them.
 */
export function localWorkers(
  resDir: string,
  runs: readonly GridRun[],
  asked: { workers?: number; threads?: number; lockTimeout?: number },
): { workers: number; threads: number | undefined; left: number } {
  const status = scan(resDir, runs, { timeout: asked.lockTimeout ?? LOCK_DEFAULTS.timeout });
  const left = runs.filter((r) => status.get(r.id)!.state !== 'done').length;
  const workers = asked.workers ?? Math.max(1, Math.min(os.availableParallelism(), left));
  return { workers, threads: asked.threads ?? defaultThreads(workers), left };
}

/** The environment of a worker with `threads` TensorFlow threads (intra- and inter-op). */
export function threadEnv(threads: number | undefined): Record<string, string> {
  if (!threads) return {};
  return {
    [NATIVE_SETTINGS_ENV.intraOpThreads]: String(threads),
    [NATIVE_SETTINGS_ENV.interOpThreads]: String(threads),
  };
}

export interface WorkerArgs {
  planFile: string;
  resDir: string;
  dataDir?: string;
  backend?: string;
  retryFailed?: boolean | string;
  lockTimeout?: number;
  /** Save every run's trained model into RES_DIR/models/NAME (hat predict, export, capacity). */
  saveModels?: boolean;
}

/** The `hat grid --worker ...` arguments of a worker (also the Slurm array task's command). */
export function workerArgs(a: WorkerArgs): string[] {
  return [
    'grid',
    '--worker',
    '--plan',
    path.resolve(a.planFile),
    '--res-dir',
    path.resolve(a.resDir),
    ...(a.dataDir !== undefined ? ['--data-dir', a.dataDir] : []),
    ...(a.backend ? ['--backend', a.backend] : []),
    ...(a.retryFailed === true ? ['--retry-failed'] : a.retryFailed ? ['--retry-failed-before', a.retryFailed] : []),
    ...(a.lockTimeout !== undefined ? ['--lock-timeout', String(a.lockTimeout)] : []),
    ...(a.saveModels ? ['--save-models'] : []),
  ];
}

export interface RunGridOptions extends Omit<WorkerArgs, 'retryFailed'> {
  plan: GridPlan;
  workers: number;
  threads?: number;
  retryFailed?: boolean;
  progress?: ProgressMode;
  /** Seconds between status lines when not on a terminal. */
  statusInterval?: number;
  /** Seconds between looks at the folder. */
  poll?: number;
  locks?: LockOptions;
  stream?: NodeJS.WriteStream;
}

export interface GridOutcome {
  counts: Record<RunState, number>;
  status: Map<string, RunStatus>;
  /** Failed (and conflicting) runs, with their message. */
  problems: { run: GridRun; message: string }[];
  seconds: number;
}

export function scan(
  resDir: string,
  runs: readonly GridRun[],
  locks: Pick<LockOptions, 'timeout'>,
): Map<string, RunStatus> {
  return new Map(runs.map((r) => [r.id, runStatus(resDir, r, locks)]));
}

/** Records the run a dead worker held as failed and frees its lock. */
function reapWorker(o: RunGridOptions, child: ChildProcess, how: string, log: string): void {
  const host = os.hostname();
  for (const run of o.plan.runs) {
    const lf = lockFile(o.resDir, run);
    const lock = readLock(lf);
    if (!lock || lock.host !== host || (lock.pid !== child.pid && lock.ppid !== child.pid)) continue;
    const previous = readFailed(failedFile(o.resDir, run));
    const record: FailedRecord = {
      format: 'hat-ts/grid-failed@1',
      id: run.id,
      name: run.name,
      error: `the worker process ${how} while running it (see ${log})`,
      time: new Date().toISOString(),
      attempt: (previous?.id === run.id ? previous.attempt : 0) + 1,
      host,
      pid: child.pid ?? 0,
      meta: run.meta,
      log,
    };
    writeFailed(o.resDir, record);
    fs.rmSync(lf, { force: true });
    logEvent(o.resDir, { event: 'worker-died', id: run.id, name: run.name, how });
  }
}

/** "was killed by SIGKILL", "exited with code 137 (SIGKILL)" (a launcher passing on its child's death), "exited with code 1". */
function exitWords(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `was killed by ${signal}`;
  const name =
    code !== null && code > 128
      ? Object.entries(os.constants.signals).find(([, n]) => n === code - 128)?.[0]
      : undefined;
  return `exited with code ${code}${name ? ` (${name})` : ''}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs a plan (already written to `o.planFile`) with `o.workers` local worker processes. */
export async function runGrid(o: RunGridOptions): Promise<GridOutcome> {
  const started = Date.now();
  const locks = o.locks ?? LOCK_DEFAULTS;
  const retryBefore = o.retryFailed ? new Date().toISOString() : undefined;
  const logDir = path.join(gridDir(o.resDir), 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const view = new GridProgressView(o.plan.name, o.plan.runs, o.workers, o.progress, o.statusInterval ?? 60, o.stream);
  const threads = o.threads ?? defaultThreads(o.workers);
  const live = new Set<ChildProcess>();
  // the workers' locks name this runner: a dead worker's run is then ours to record, not a sibling's to rerun
  const runner = `${os.hostname()}:${process.pid}:${started}`;
  let spawned = 0;
  const spawnWorker = () => {
    const n = ++spawned;
    const log = path.join(logDir, `worker-${n}-${os.hostname()}-${process.pid}.log`);
    const fd = fs.openSync(log, 'a');
    const child = spawn(
      HAT_BIN,
      workerArgs({ ...o, retryFailed: retryBefore, lockTimeout: o.lockTimeout ?? locks.timeout }),
      {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...threadEnv(threads), HAT_GRID_WORKER: String(n), [RUNNER_ENV]: runner },
      },
    );
    fs.closeSync(fd);
    live.add(child);
    child.on('exit', (code, signal) => {
      live.delete(child);
      // 0: nothing failed, 3: runs failed (recorded by the worker); anything else: the worker died
      if (code !== 0 && code !== 3) reapWorker(o, child, exitWords(code, signal), log);
    });
  };
  const onSignal = (sig: NodeJS.Signals) => {
    for (const c of live) c.kill('SIGTERM');
    process.exitCode = sig === 'SIGINT' ? 130 : 143;
    process.stderr.write(`\nhat grid: stopped (${sig}); rerun the same command to continue\n`);
    process.exit();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let status = scan(o.resDir, o.plan.runs, locks);
    const claimable = (s: Map<string, RunStatus>) =>
      o.plan.runs.filter((r) => {
        const st = s.get(r.id)!;
        return (
          st.state === 'queued' ||
          st.state === 'partial' ||
          (st.state === 'failed' && retryBefore !== undefined && st.failed!.time < retryBefore)
        );
      }).length;
    const initial = claimable(status);
    for (let i = 0; i < Math.min(o.workers, initial); i++) spawnWorker();
    view.update(status);
    while (live.size > 0) {
      await sleep((o.poll ?? 1) * 1000);
      status = scan(o.resDir, o.plan.runs, locks);
      view.update(status);
      // replace workers that died while runs are left (at most as many times as there are runs)
      const left = claimable(status);
      while (live.size < Math.min(o.workers, left) && spawned < o.workers + o.plan.runs.length) spawnWorker();
    }
    status = scan(o.resDir, o.plan.runs, locks);
    view.finish(status);
    const problems = o.plan.runs.flatMap((run) => {
      const s = status.get(run.id)!;
      if (s.state === 'failed') return [{ run, message: s.failed!.error }];
      if (s.state === 'conflict') return [{ run, message: s.note ?? 'conflict' }];
      return [];
    });
    return { counts: countStates(o.plan.runs, status), status, problems, seconds: (Date.now() - started) / 1000 };
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** Writes the plan into RES_DIR/.grid/plans (the folder checked writable first, naming `what`); its path. */
export function savePlan(resDir: string, plan: GridPlan, what: string): string {
  const planFile = path.join(gridDir(resDir), 'plans', `${plan.name}.json`);
  checkWritableFolder(resDir, what);
  writePlan(planFile, plan);
  return planFile;
}

/**
 * Runs a saved plan with local workers (`hat grid`, `hat quick`): as many as asked, else as `localWorkers`
 * chooses, after one line on stderr (`label`: the runs, how many are left, workers and threads).
 */
export function runLocally(
  label: string,
  o: Omit<RunGridOptions, 'workers' | 'threads'> & { workers?: number; threads?: number },
): Promise<GridOutcome> {
  const { workers, threads, left } = localWorkers(o.resDir, o.plan.runs, o);
  process.stderr.write(
    `${label}: ${o.plan.runs.length} runs (${left} to do) into ${o.resDir} with ${workers} worker${workers > 1 ? 's' : ''}` +
      `${threads ? `, ${threads} TensorFlow threads each` : ''}\n`,
  );
  return runGrid({ ...o, workers, threads });
}

/** The closing report of a grid: counts, each problem, where the logs are. */
export function outcomeReport(name: string, resDir: string, out: GridOutcome): string {
  const c = out.counts;
  const lines = [
    `${name}: ${c.done} done, ${c.failed} failed, ${c.conflict} conflicting, ${c.running} running elsewhere, ` +
      `${c.partial + c.queued} not run, in ${fmtTime(out.seconds)}; results in ${resDir}`,
  ];
  for (const p of out.problems) lines.push(`  ${p.run.name}: ${p.message.split('\n')[0]}`);
  if (c.failed) lines.push('Failure records: RES_DIR/NAME.failed.json; rerun them with --retry-failed.');
  return lines.join('\n');
}

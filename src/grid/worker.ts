/**
 * A grid worker: goes through a plan, claims each run that is neither done nor held (lock files, ./locks.ts),
 * runs it with `runExperiment` (which resumes from the run's checkpoint), records a failure instead of
 * stopping, and repeats until nothing is left it could claim. Local workers (`hat grid --workers N`),
 * workers on other machines sharing the folder, and Slurm array tasks (one run each) are all this.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { runExperiment } from '../runs/run';
import type { Callback } from '../training/callbacks';
import { createProgress } from '../training/progress';
import type { GridPlan, GridRun } from './expand';
import { type HeldLock, LOCK_DEFAULTS, type LockOptions, claim, release } from './locks';
import {
  type FailedRecord,
  type GridExtras,
  failedFile,
  glanceResult,
  lockFile,
  logEvent,
  readFailed,
  resultFile,
  runLogFile,
  runStatus,
  writeFailed,
} from './state';

export interface WorkerOptions {
  plan: GridPlan;
  resDir: string;
  dataDir?: string;
  backend?: string;
  /** Rerun failed runs whose failure was recorded before this time (ISO; default: when the worker started). */
  retryFailed?: boolean | string;
  /** Only these runs (a Slurm array task: one); they are retried whatever their failure record says. */
  only?: readonly GridRun[];
  locks?: LockOptions;
  /** Save every run's trained model into RES_DIR/models/NAME. */
  saveModels?: boolean;
  /** One line per event (claimed, done, failed); default stderr. */
  say?: (line: string) => void;
}

export interface WorkerOutcome {
  done: string[];
  failed: string[];
  /** Runs another worker was running when this one gave up on them. */
  busy: string[];
}

/** The `grid` entry of the result file's extras: where the run comes from, its id, its wall time. */
function gridRecorder(run: GridRun): Callback {
  // from now (data loading included) to each write of the result file, plus what earlier attempts took
  const since = Date.now();
  let before = 0;
  return {
    key: 'grid',
    extras: (): GridExtras => ({
      id: run.id,
      ...run.meta,
      wallSeconds: Math.round(10 * (before + (Date.now() - since) / 1000)) / 10,
      host: os.hostname(),
    }),
    resume(extras: unknown) {
      before = (extras as Partial<GridExtras> | undefined)?.wallSeconds ?? 0;
    },
  };
}

/** A write stream appending synchronously to a file (the training loop never yields to the event loop). */
function appendStream(file: string): NodeJS.WriteStream {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return {
    isTTY: false,
    write: (s: string) => {
      fs.appendFileSync(file, s);
      return true;
    },
  } as unknown as NodeJS.WriteStream;
}

async function execute(o: WorkerOptions, run: GridRun, attempt: number): Promise<boolean> {
  const log = runLogFile(o.resDir, run);
  const started = Date.now();
  logEvent(o.resDir, { event: 'start', id: run.id, name: run.name, attempt });
  try {
    const { approach } = await runExperiment({
      ...run.run,
      resDir: o.resDir,
      dataDir: o.dataDir,
      backend: o.backend,
      progress: createProgress('lines', appendStream(log)),
      callbacks: [gridRecorder(run)],
      resume: true,
      saveModel: o.saveModels ? path.join(o.resDir, 'models', run.name) : undefined,
    });
    approach.dispose();
    fs.rmSync(failedFile(o.resDir, run), { force: true });
    logEvent(o.resDir, { event: 'done', id: run.id, name: run.name, seconds: (Date.now() - started) / 1000 });
    return true;
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const record: FailedRecord = {
      format: 'hat-ts/grid-failed@1',
      id: run.id,
      name: run.name,
      error: err.message,
      ...(err instanceof UserError ? {} : { stack: err.stack }),
      time: new Date().toISOString(),
      attempt,
      host: os.hostname(),
      pid: process.pid,
      meta: run.meta,
      log,
    };
    writeFailed(o.resDir, record);
    fs.appendFileSync(log, `FAILED (attempt ${attempt}): ${err.stack ?? err.message}\n`);
    logEvent(o.resDir, { event: 'failed', id: run.id, name: run.name, attempt, error: err.message.split('\n')[0] });
    return false;
  }
}

/** Runs every run of the plan it can claim (or only `o.only`), until none is left. */
export async function runWorker(o: WorkerOptions): Promise<WorkerOutcome> {
  const locks = o.locks ?? LOCK_DEFAULTS;
  const say = o.say ?? ((l: string) => process.stderr.write(l + '\n'));
  const startedAt = new Date().toISOString();
  const retryBefore = o.only ? '9999' : o.retryFailed === true ? startedAt : o.retryFailed || '';
  const runs = o.only ?? o.plan.runs;
  const attempted = new Set<string>();
  const out: WorkerOutcome = { done: [], failed: [], busy: [] };
  let claimedAny = true;
  while (claimedAny) {
    claimedAny = false;
    for (const run of runs) {
      if (attempted.has(run.id)) continue;
      const before = runStatus(o.resDir, run, locks);
      if (before.state === 'done' || before.state === 'conflict') {
        if (o.only && before.state === 'conflict') say(`hat grid: ${run.name}: ${before.note}`);
        continue;
      }
      if (before.state === 'running') {
        if (o.only) {
          say(`hat grid: ${run.name} is being run by ${before.lock?.host}:${before.lock?.pid}; leaving it to it`);
          out.busy.push(run.id);
        }
        continue;
      }
      if (before.state === 'failed' && !(before.failed!.time < retryBefore)) continue;
      const c = claim(lockFile(o.resDir, run), run.id, locks);
      if (!c.claimed) continue;
      const lock: HeldLock = c.claimed;
      claimedAny = true;
      attempted.add(run.id);
      try {
        if (c.tookOver !== undefined) {
          const prev = c.tookOver;
          logEvent(o.resDir, {
            event: 'takeover',
            id: run.id,
            name: run.name,
            from: prev ? `${prev.host}:${prev.pid}` : 'unreadable lock',
          });
        }
        // the folder may have changed between the look and the claim (the lock is ours now: look at the files)
        const result = glanceResult(resultFile(o.resDir, run));
        if (result === null || (result && (result.id !== run.id || result.status === 'complete'))) continue;
        const failed = readFailed(failedFile(o.resDir, run));
        const previous = failed?.id === run.id ? failed : undefined;
        if (previous && !(previous.time < retryBefore)) continue;
        const attempt = (previous?.attempt ?? 0) + 1;
        say(`hat grid: start ${run.name} (${run.id})${attempt > 1 ? `, attempt ${attempt}` : ''}`);
        const ok = await execute(o, run, attempt);
        (ok ? out.done : out.failed).push(run.id);
        say(`hat grid: ${ok ? 'done' : 'FAILED'} ${run.name}`);
      } finally {
        if (!(await release(lock))) {
          logEvent(o.resDir, { event: 'lost-lock', id: run.id, name: run.name });
          say(`hat grid: the lock of ${run.name} was taken over by another worker while this one ran it`);
        }
      }
    }
    if (o.only) break;
  }
  return out;
}

/**
 * Lock files: which worker runs which run, so that two workers (or two machines on a shared folder) never run
 * the same one. A lock `RES/NAME.lock` is created atomically with O_EXCL (`fs.openSync(file, 'wx')`) and
 * holds the owner's host, pid, start time, a random token and a heartbeat that a thread of the owner rewrites
 * every few seconds (the training loop blocks the main thread for hours, so the heartbeat cannot live there).
 *
 * A lock is stale when its pid is dead on this host, when its heartbeat is older than the timeout (any host;
 * clocks of machines sharing a folder are assumed within the timeout of each other), or when it was held by
 * an earlier incarnation of the same Slurm array task (Slurm requeued it, so the earlier one is gone). The
 * lock of a dead worker started by the same grid runner as the reader is not stale to that reader: the runner
 * records the run as failed and removes the lock (a sibling taking it over first would rerun a run that kills
 * its worker, and race with that record).
 *
 * Taking over a stale lock: the taker creates `NAME.lock.takeover` with O_EXCL (only one taker at a time),
 * re-reads the lock and goes on only if it is still the stale one it saw (same token), moves it aside
 * (rename), creates its own lock with O_EXCL, and removes the marker. A marker older than a minute is left by
 * a taker that died; it is renamed away and the takeover is tried again later. The owner of a lock that was
 * taken over keeps writing its heartbeat to its open file, which is no longer the lock: harmless.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { pidAlive } from '../core/io';

export interface SlurmTask {
  jobId: string;
  /** Array job and task ids of an array task. */
  arrayJobId?: string;
  arrayTaskId?: string;
  restartCount: number;
}

export interface LockInfo {
  format: 'hat-ts/grid-lock@1';
  id: string;
  host: string;
  pid: number;
  /** The parent of the owner (a launcher such as tsx may stand between a grid runner and its worker). */
  ppid: number;
  started: string;
  heartbeat: string;
  token: string;
  slurm?: SlurmTask;
  /** The grid runner that started the owner (`HAT_GRID_RUNNER`), when one did. */
  runner?: string;
}

/** Set by a grid runner for its workers: host, pid and start of the runner, unique while it lives. */
export const RUNNER_ENV = 'HAT_GRID_RUNNER';

export interface HeldLock {
  file: string;
  info: LockInfo;
  fd: number;
  heartbeat?: Worker;
}

export type ClaimResult =
  { claimed: HeldLock; tookOver?: LockInfo | null } | { claimed?: undefined; heldBy: LockInfo | null; reason: string };

export interface LockOptions {
  /** Seconds without heartbeat after which a lock of another host (or of a reused pid) is stale. */
  timeout: number;
  /** Seconds between heartbeats. */
  heartbeat: number;
}

export const LOCK_DEFAULTS: LockOptions = { timeout: 600, heartbeat: 30 };
const MARKER_TIMEOUT_MS = 60_000;
/** Lock content is padded to this size so that a rewrite never leaves a tail of the previous one. */
const LOCK_BYTES = 1024;

/** This process's Slurm task, when it is one. */
export function slurmTask(env: NodeJS.ProcessEnv = process.env): SlurmTask | undefined {
  if (!env.SLURM_JOB_ID) return undefined;
  return {
    jobId: env.SLURM_JOB_ID,
    ...(env.SLURM_ARRAY_JOB_ID ? { arrayJobId: env.SLURM_ARRAY_JOB_ID } : {}),
    ...(env.SLURM_ARRAY_TASK_ID ? { arrayTaskId: env.SLURM_ARRAY_TASK_ID } : {}),
    restartCount: Number(env.SLURM_RESTART_COUNT ?? 0) || 0,
  };
}

function lockContent(info: LockInfo): Buffer {
  const json = JSON.stringify(info);
  return Buffer.from(json.length < LOCK_BYTES ? json.padEnd(LOCK_BYTES - 1, ' ') + '\n' : json + '\n');
}

/** The lock's content, or null when it cannot be parsed (being written); undefined when there is no lock. */
export function readLock(file: string): LockInfo | null | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const info = JSON.parse(text) as LockInfo;
    return info && info.format === 'hat-ts/grid-lock@1' ? info : null;
  } catch {
    return null;
  }
}

const ageMs = (iso: string, now: number): number => {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? now - t : Infinity;
};

/** Why a lock is stale, or undefined when its owner may still be running. */
export function staleReason(
  info: LockInfo | null,
  file: string,
  opts: Pick<LockOptions, 'timeout'>,
  now = Date.now(),
  me: { host: string; slurm?: SlurmTask; runner?: string } = {
    host: os.hostname(),
    slurm: slurmTask(),
    runner: process.env[RUNNER_ENV],
  },
): string | undefined {
  if (!info) {
    // unreadable: being written right now, or damaged; judge by the file's age
    let mtime: number;
    try {
      mtime = fs.statSync(file).mtimeMs;
    } catch {
      return undefined;
    }
    return now - mtime > opts.timeout * 1000 ? `unreadable and unchanged for over ${opts.timeout} s` : undefined;
  }
  if (info.host === me.host && !pidAlive(info.pid)) {
    if (info.runner !== undefined && info.runner === me.runner) return undefined; // our runner records it
    return `pid ${info.pid} is dead on ${info.host}`;
  }
  const s = info.slurm;
  if (
    s &&
    me.slurm &&
    (s.arrayJobId
      ? s.arrayJobId === me.slurm.arrayJobId && s.arrayTaskId === me.slurm.arrayTaskId
      : s.jobId === me.slurm.jobId) &&
    me.slurm.restartCount > s.restartCount
  )
    return `held by an earlier run of this Slurm task (restart ${s.restartCount}; now ${me.slurm.restartCount})`;
  const age = ageMs(info.heartbeat, now);
  if (age > opts.timeout * 1000) return `no heartbeat for ${Math.round(age / 1000)} s (timeout ${opts.timeout} s)`;
  return undefined;
}

function newInfo(id: string): LockInfo {
  const now = new Date().toISOString();
  const slurm = slurmTask();
  const runner = process.env[RUNNER_ENV];
  return {
    format: 'hat-ts/grid-lock@1',
    id,
    host: os.hostname(),
    pid: process.pid,
    ppid: process.ppid,
    started: now,
    heartbeat: now,
    token: crypto.randomBytes(8).toString('hex'),
    ...(slurm ? { slurm } : {}),
    ...(runner ? { runner } : {}),
  };
}

/** Creates the lock with O_EXCL; undefined when it exists. */
function create(file: string, id: string): HeldLock | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  }
  const info = newInfo(id);
  const buf = lockContent(info);
  fs.writeSync(fd, buf, 0, buf.length, 0);
  return { file, info, fd };
}

/** Takes a stale lock over (see the file comment); the new lock, or undefined when another process got there first. */
function takeOver(file: string, stale: LockInfo | null, id: string): HeldLock | undefined {
  const marker = `${file}.takeover`;
  let fd: number;
  try {
    fd = fs.openSync(marker, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    try {
      if (Date.now() - fs.statSync(marker).mtimeMs > MARKER_TIMEOUT_MS)
        fs.renameSync(marker, `${marker}.dead.${process.pid}.${Date.now()}`);
    } catch {
      // gone or moved by someone else meanwhile
    }
    return undefined;
  }
  try {
    fs.writeSync(fd, `${os.hostname()} ${process.pid} ${new Date().toISOString()}\n`);
    fs.closeSync(fd);
    const now = readLock(file);
    if (now === undefined) return create(file, id);
    const same = stale === null ? now === null : now !== null && now.token === stale.token;
    if (!same) return undefined;
    const aside = `${file}.stale.${stale?.token ?? 'unreadable'}.${Date.now()}`;
    try {
      fs.renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return create(file, id);
      throw e;
    }
    fs.rmSync(aside, { force: true });
    return create(file, id);
  } finally {
    fs.rmSync(marker, { force: true });
  }
}

/** The heartbeat thread: rewrites the lock through its open descriptor every `seconds`. */
const HEARTBEAT_SOURCE = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { fd, info, seconds, bytes } = workerData;
setInterval(() => {
  try {
    info.heartbeat = new Date().toISOString();
    let json = JSON.stringify(info);
    json = json.length < bytes ? json.padEnd(bytes - 1, ' ') + '\\n' : json + '\\n';
    const buf = Buffer.from(json);
    fs.writeSync(fd, buf, 0, buf.length, 0);
  } catch (e) {}
}, seconds * 1000);
`;

function startHeartbeat(lock: HeldLock, seconds: number): void {
  const w = new Worker(HEARTBEAT_SOURCE, {
    eval: true,
    workerData: { fd: lock.fd, info: lock.info, seconds, bytes: LOCK_BYTES },
  });
  w.unref();
  lock.heartbeat = w;
}

/**
 * Claims the run `id` through `file`: creates the lock, or takes over a stale one. The claimed lock gets a
 * heartbeat thread (unless `opts.heartbeat` is 0).
 */
export function claim(file: string, id: string, opts: LockOptions = LOCK_DEFAULTS): ClaimResult {
  let held = create(file, id);
  let tookOver: LockInfo | null | undefined;
  if (!held) {
    const info = readLock(file);
    if (info === undefined) held = create(file, id);
    else {
      const reason = staleReason(info, file, opts);
      if (!reason) return { heldBy: info, reason: 'held' };
      held = takeOver(file, info, id);
      if (!held) return { heldBy: info, reason: 'another worker is taking it over' };
      tookOver = info;
    }
    if (!held) return { heldBy: readLock(file) ?? null, reason: 'claimed by another worker meanwhile' };
  }
  if (opts.heartbeat > 0) startHeartbeat(held, opts.heartbeat);
  return { claimed: held, ...(tookOver !== undefined ? { tookOver } : {}) };
}

/** Is the lock file still the one we created (not taken over)? */
export function stillOurs(lock: HeldLock): boolean {
  try {
    const a = fs.fstatSync(lock.fd);
    const b = fs.statSync(lock.file);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/** Stops the heartbeat and removes the lock if it is still ours; false when it had been taken over. */
export async function release(lock: HeldLock): Promise<boolean> {
  if (lock.heartbeat) await lock.heartbeat.terminate();
  const ours = stillOurs(lock);
  if (ours) fs.rmSync(lock.file, { force: true });
  fs.closeSync(lock.fd);
  return ours;
}

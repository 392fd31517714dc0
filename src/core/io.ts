/** File helpers shared by the data cache and result files. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from './errors';
import { faultPoint } from './faults';

/** A file that cannot be written (full disk, read-only or forbidden folder): the message names the folder. */
export class StorageError extends UserError {
  override name = 'StorageError';
  constructor(
    readonly file: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

const WHY: Record<string, string> = {
  ENOSPC: 'the disk is full (ENOSPC). Free some space',
  EDQUOT: 'the disk quota is used up (EDQUOT). Free some space',
  EROFS: 'the file system is read-only (EROFS). Choose a writable folder (e.g. --res-dir)',
  EACCES: 'no permission to write there (EACCES). Fix the permissions or choose another folder',
  EPERM: 'no permission to write there (EPERM). Fix the permissions or choose another folder',
  ENOTDIR: 'a part of that path is a file, not a folder (ENOTDIR). Choose another folder',
  EEXIST: 'a part of that path is a file, not a folder (EEXIST). Choose another folder',
};

/**
 * A storage failure as a StorageError naming the folder (and `what` was being written, default the file's
 * name), or the error itself when it is something else.
 */
export function storageError(e: unknown, file: string, what = path.basename(file)): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  const why = code ? WHY[code] : undefined;
  if (!why) return e;
  const dir = path.dirname(path.resolve(file));
  return new StorageError(
    file,
    code,
    `cannot write ${what} in ${dir}: ${why}, then run the same command again (nothing was half-written; a run resumes from its last checkpoint).`,
  );
}

/**
 * mkdir -p that reports the real cause: Node's recursive mkdir says ENOENT for a read-only parent, where one
 * level at a time says EROFS (or EACCES, ENOTDIR...).
 */
function makeFolder(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch {
    const parent = path.dirname(dir);
    if (parent !== dir && !fs.existsSync(parent)) makeFolder(parent);
    try {
      fs.mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(dir).isDirectory()) throw e;
    }
  }
}

const HOST = os.hostname().replace(/[^\w-]/g, '_');
/** A day: a temporary file this old is left over by a writer on any machine, whatever its pid says. */
const STALE_MS = 24 * 3600 * 1000;

/** Temporary files are `FILE.HOST.PID.RANDOM.tmp`: unique per writer, recognisable as leftovers of `FILE`. */
function tmpName(file: string): string {
  return `${file}.${HOST}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
}

/** Removes a file if it is there and can be removed (clean-up after a failure must not hide the failure). */
function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // ENOTDIR, EROFS...: there is nothing to remove, or nothing can be
  }
}

/**
 * Is `pid` a live process of this host? A dead child not yet reaped by its parent (a killed writer whose
 * parent died too, under an init that never reaps) still answers signal 0: its state in /proc is Z, dead.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/PID/stat is "PID (COMM) STATE ...", and COMM may itself hold spaces or parentheses
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true; // no /proc (macOS): trust the signal
  }
}

/** Who wrote a temporary file: FILE.HOST.PID.RANDOM.tmp, or FILE.PID.TIME.tmp (the naming before). */
function writerOf(name: string): { host: string; pid: number } {
  const parts = name.slice(0, -'.tmp'.length).split('.');
  const last = parts[parts.length - 1];
  return /^\d{12,}$/.test(last)
    ? { host: HOST, pid: Number(parts[parts.length - 2]) }
    : { host: parts[parts.length - 3], pid: Number(parts[parts.length - 2]) };
}

/**
 * Removes the temporary files that killed writers left in `dir` under names starting with `prefix`: those of a
 * dead process of this machine, and any older than a day. Live writers' are left alone.
 */
export function removeStaleTemporaries(dir: string, prefix: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const { host, pid } = writerOf(name);
    const p = path.join(dir, name);
    try {
      const old = Date.now() - fs.statSync(p).mtimeMs > STALE_MS;
      if (old || (host === HOST && Number.isInteger(pid) && pid !== process.pid && !pidAlive(pid))) fs.rmSync(p);
    } catch {
      // gone already (another process cleaned it)
    }
  }
}

/**
 * Write to a temporary name in the same folder, then rename: readers never see half a file, a writer killed at
 * any point leaves the previous version intact (and a temporary file that the next write removes), and two
 * processes writing the same file never mix their bytes. A full disk or a read-only folder is a StorageError
 * naming the folder, with nothing left behind.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  try {
    makeFolder(path.dirname(file));
  } catch (e) {
    throw storageError(e, file);
  }
  removeStaleTemporaries(path.dirname(file), `${path.basename(file)}.`);
  const tmp = tmpName(file);
  try {
    fs.writeFileSync(tmp, data);
    faultPoint('atomic-write'); // the tests' SIGKILL between writing and renaming
    fs.renameSync(tmp, file);
  } catch (e) {
    removeQuietly(tmp);
    throw storageError(e, file);
  }
}

/** Creates `dir` when need be and proves that files can be written in it: a StorageError naming it otherwise. */
export function checkWritableFolder(dir: string, what = 'files'): void {
  const probe = path.join(dir, `.hat-write-probe.${HOST}.${process.pid}.tmp`);
  try {
    makeFolder(dir);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    removeQuietly(probe);
    throw storageError(e, probe, what);
  }
}

/**
 * Slurm: a job-array script with one array task per pending run of a grid. Each task runs
 * `hat grid --worker --plan PLAN --index $SLURM_ARRAY_TASK_ID` against the one results folder: it claims its
 * run's lock (a requeued task takes over the lock of its earlier incarnation), and `runExperiment` resumes
 * the run from its checkpoint. The plan next to the script lists exactly the runs of the array, in order.
 */
import { NATIVE_SETTINGS_ENV } from '../backend/settings';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { writeFileAtomic } from '../core/io';
import { type GridPlan, writePlan } from './expand';
import { HAT_BIN, workerArgs } from './runner';
import { gridDir } from './state';

export interface SlurmOptions {
  partition?: string;
  /** Slurm time limit per run ("4:00:00", "2-00:00:00"). */
  time?: string;
  /** Memory per run ("8G"). */
  mem?: string;
  cpusPerTask?: number;
  /** Folder of the tasks' stdout/stderr files (default RES_DIR/.grid/slurm). */
  out?: string;
  /** At most this many array tasks at once (`--array=0-N%K`). */
  maxParallel?: number;
  /** TensorFlow threads per task (default: the task's CPUs). */
  threads?: number;
}

export interface SlurmJob {
  script: string;
  plan: string;
  runs: number;
}

const quote = (s: string): string => (/^[A-Za-z0-9_./:=+,@%-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Writes the job-array script (and its plan of pending runs) for `pending`; the runs must not be empty. */
export function writeSlurmJob(
  pending: GridPlan,
  o: {
    resDir: string;
    dataDir?: string;
    backend?: string;
    slurm: SlurmOptions;
    command?: string;
    saveModels?: boolean;
  },
): SlurmJob {
  if (!pending.runs.length) throw new UserError('no pending runs: nothing to submit');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const dir = path.resolve(gridDir(o.resDir), 'slurm');
  const base = path.join(dir, `${pending.name}-${stamp}`);
  const out = path.resolve(o.slurm.out ?? dir);
  fs.mkdirSync(out, { recursive: true });
  const planFile = `${base}.plan.json`;
  writePlan(planFile, pending);
  const s = o.slurm;
  const n = pending.runs.length;
  const directives = [
    `--job-name=hat-${pending.name}`,
    `--array=0-${n - 1}${s.maxParallel ? `%${s.maxParallel}` : ''}`,
    `--output=${path.join(out, '%x_%A_%a.out')}`,
    ...(s.cpusPerTask ? [`--cpus-per-task=${s.cpusPerTask}`] : []),
    ...(s.mem ? [`--mem=${s.mem}`] : []),
    ...(s.time ? [`--time=${s.time}`] : []),
    ...(s.partition ? [`--partition=${s.partition}`] : []),
    '--requeue',
  ];
  const args = workerArgs({
    planFile,
    resDir: o.resDir,
    dataDir: o.dataDir,
    backend: o.backend,
    saveModels: o.saveModels,
  });
  const threads = s.threads ? String(s.threads) : '${SLURM_CPUS_PER_TASK:-1}';
  const script = [
    '#!/bin/bash',
    ...directives.map((d) => `#SBATCH ${d}`),
    `# hat grid ${pending.name}: ${n} runs, one per array task, listed in order in`,
    `#   ${planFile}`,
    `# written ${new Date().toISOString()}${o.command ? ` by: ${o.command}` : ''}`,
    '# A requeued task (SLURM_RESTART_COUNT > 0) resumes its run from the run checkpoint.',
    'set -euo pipefail',
    `cd ${quote(process.cwd())}`,
    ...[NATIVE_SETTINGS_ENV.intraOpThreads, NATIVE_SETTINGS_ENV.interOpThreads].map(
      (v) => `export ${v}="\${${v}:-${threads}}"`,
    ),
    `exec ${[HAT_BIN, ...args].map(quote).join(' ')} --index "$SLURM_ARRAY_TASK_ID"`,
    '',
  ].join('\n');
  const scriptFile = `${base}.sbatch`;
  writeFileAtomic(scriptFile, script);
  fs.chmodSync(scriptFile, 0o755);
  return { script: scriptFile, plan: planFile, runs: n };
}

/** `sbatch --parsable SCRIPT`: the job id. */
export function submit(script: string, extra: string[] = []): string {
  let out: string;
  try {
    out = execFileSync('sbatch', ['--parsable', ...extra, script], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { code?: string; stderr?: string; message: string };
    if (err.code === 'ENOENT') throw new UserError('sbatch is not on the PATH: is this a Slurm login node?');
    throw new UserError(`sbatch refused ${script}: ${(err.stderr ?? err.message).trim()}`);
  }
  // --parsable prints "jobid" or "jobid;cluster"
  return out.trim().split(';')[0];
}

/** `hat grid`: run a named protocol of the paper (or a grid file) into one results folder, locally or on Slurm. */
import * as os from 'node:os';
import * as path from 'node:path';
import { type Command, Option } from 'commander';
import { OptionError } from '../core/errors';
import { dataDirs, existingDataDirs } from '../data/datasets';
import {
  type GridPlan,
  type GridRun,
  describeScale,
  makePlan,
  missingData,
  protocolGrid,
  protocolsPlan,
  readPlan,
} from '../grid/expand';
import { LOCK_DEFAULTS } from '../grid/locks';
import {
  ALL_PROTOCOLS,
  METHODS,
  type Method,
  PROTOCOL_DEFS,
  PROTOCOLS,
  type ProtocolName,
  SCALES,
  type Scale,
} from '../grid/protocols';
import { outcomeReport, runLocally, savePlan, scan } from '../grid/runner';
import { type GridFile, gridBaseName, gridToYaml, readGridFile } from '../grid/schema';
import { submit, writeSlurmJob } from '../grid/slurm';
import { countStates } from '../grid/progress';
import { runWorker } from '../grid/worker';
import type { ProgressMode } from '../training/progress';
import {
  backendOption,
  dataDirOption,
  int,
  positive,
  progressOption,
  protocolList,
  slurmMemory,
  slurmTime,
} from './options';

interface GridOpts {
  protocol?: ProtocolName[];
  scale?: Scale;
  method: Method;
  file?: string;
  resDir?: string;
  dataDir?: string;
  backend?: string;
  /** Local workers; default: one per core, no more than the runs left. */
  workers?: number;
  threads?: number;
  retryFailed?: boolean;
  retryFailedBefore?: string;
  dryRun?: boolean;
  printGrid?: boolean;
  skipUnavailable?: boolean;
  slurm?: boolean;
  submit?: boolean;
  partition?: string;
  time?: string;
  mem?: string;
  cpusPerTask?: number;
  slurmOut?: string;
  maxParallel?: number;
  lockTimeout: number;
  statusInterval: number;
  progress: ProgressMode;
  worker?: boolean;
  saveModels?: boolean;
  plan?: string;
  index?: number;
}

/** A help line wrapped at 116 columns, continuation lines indented. */
function wrap(line: string, indent: number, width = 116): string {
  const out: string[] = [];
  let rest = line;
  while (rest.length > width) {
    const cut = rest.lastIndexOf(' ', width);
    out.push(rest.slice(0, cut));
    rest = ' '.repeat(indent) + rest.slice(cut + 1);
  }
  return [...out, rest].join('\n');
}

const gridHelp = (): string =>
  [
    '',
    'Protocols (--protocol; spec §8; each lists the references random and joint it needs):',
    ...PROTOCOLS.map((p) => wrap(`  ${p.padEnd(12)} ${PROTOCOL_DEFS[p].title}`, 15)),
    wrap(
      `  ${'all'.padEnd(12)} all of them as one plan, in the order ${ALL_PROTOCOLS.join(', ')} (runs they share once)`,
      15,
    ),
    '',
    'Scales (--scale): what each cuts from the spec protocol',
    ...SCALES.map((s) =>
      wrap(`  ${s.padEnd(6)} ${s === 'paper' ? "the spec's protocol: " : ''}${describeScale(s)}`, 9),
    ),
    '  (the values live in LITE and SMOKE of src/grid/protocols.ts; all lite protocols together: about 5-6 hours',
    '  on an otherwise idle 2-core machine with 2 workers, about 8 on a shared one: res/reference/lite/README.md)',
    '',
    "Methods (--method): IMM-mode and PNN differ between the reference code and the paper. 'reference' (default)",
    "runs the reference code's behaviour (tags imm-mode-ref: merge=false, progressive-ref: headLateral=false), as",
    "the published numbers; 'paper' also runs the paper's methods (tags imm-mode, progressive).",
    '',
    'Runs: every run has an id, a hash of its full configuration (experiment, datasets, approach, every parameter',
    'after defaults, seed, protocol options, monitors); its result file RES_DIR/EXPERIMENT_TAG_SEED.json records',
    'it under extras.grid with the grid, protocol, scale and method. A run is done when that file is complete',
    'with its id: done runs are skipped, interrupted ones resume from their checkpoint. Workers claim runs with',
    'lock files (NAME.lock: host, pid, start, heartbeat); a stale lock (dead pid on this host, or no heartbeat for',
    '--lock-timeout seconds) is taken over. A failing run leaves NAME.failed.json and the grid goes on; the exit',
    'status is 1 when any run failed (--retry-failed reruns them). Bookkeeping: RES_DIR/.grid/ (plans, events.log,',
    'per-run logs, Slurm scripts). Several machines may run workers on one shared folder (same --res-dir).',
    '',
    'Slurm (--slurm): writes a job-array script with one task per pending run (and its plan) under',
    'RES_DIR/.grid/slurm/; each task runs `hat grid --worker --plan PLAN --index $SLURM_ARRAY_TASK_ID`. A requeued',
    'task resumes its run from the checkpoint. --submit submits it with `sbatch --parsable` and prints the job id.',
    '',
    'Examples:',
    '  hat grid --protocol all --scale paper --data-dir ../shared/dat       # the whole paper, one command',
    '  hat grid --protocol table1 --scale smoke --data-dir ../shared/dat    # every Table 1 run, tiny, about a minute',
    '  hat grid --protocol table1 --scale lite --dry-run                   # list the runs, their ids and state',
    '  hat grid --protocol robustness --scale paper --workers 2 --threads 1',
    '  hat grid --file my-grid.yaml --res-dir res/mine --retry-failed',
    '  hat grid --protocol table1 --scale paper --slurm --submit --time 2-00:00:00 --mem 8G --cpus-per-task 4',
    '  hat grid --protocol table1 --scale lite --print-grid > table1.yaml   # the protocol as an editable grid file',
    '  hat results res/lite --protocol table1 --scale lite                  # what is done, Table 1, BWT/FWT',
  ].join('\n');

/** The plan of the grid file or of the protocols (see protocolsPlan), and the grid when --print-grid wants it. */
function loadGrid(o: GridOpts): { grid?: GridFile; plan: GridPlan; name: string } {
  if (o.file && o.protocol) throw new OptionError('give --protocol or --file, not both');
  if (o.file) {
    const grid = readGridFile(o.file);
    return { grid, plan: makePlan(grid), name: gridBaseName(o.file) };
  }
  if (!o.protocol) throw new OptionError('give --protocol NAME (with --scale) or --file GRID.yaml');
  if (!o.scale) throw new OptionError(`--protocol needs --scale (${SCALES.join(', ')})`);
  const plan = protocolsPlan(o.protocol, o.scale, o.method);
  const grid = o.printGrid && o.protocol.length === 1 ? protocolGrid(o.protocol[0], o.scale, o.method) : undefined;
  return { ...(grid ? { grid } : {}), plan, name: plan.name };
}

function dryRun(plan: GridPlan, resDir: string, lockTimeout: number, missing: Map<string, string[]>): void {
  const status = scan(resDir, plan.runs, { timeout: lockTimeout });
  const w = Math.max(4, ...plan.runs.map((r) => r.name.length));
  console.log(`${plan.name}: ${plan.runs.length} runs in ${resDir}`);
  console.log(`${'state'.padEnd(9)} ${'id'.padEnd(16)}  ${'result file'.padEnd(w)}  notes`);
  for (const r of plan.runs) {
    const s = status.get(r.id)!;
    const notes = [
      s.state === 'failed' ? `attempt ${s.failed!.attempt}: ${s.failed!.error.split('\n')[0]}` : '',
      s.state === 'running' ? `${s.lock?.host}:${s.lock?.pid}` : '',
      s.state === 'partial' && s.result ? `${s.result.tasksDone}/${s.result.tasks} tasks` : '',
      s.note ?? '',
      missing.has(r.id) ? `needs ${missing.get(r.id)!.join(', ')} (not found)` : '',
    ].filter(Boolean);
    console.log(`${s.state.padEnd(9)} ${r.id}  ${r.name.padEnd(w)}  ${notes.join('; ')}`.trimEnd());
  }
  const c = countStates(plan.runs, status);
  console.log(
    `${plan.runs.length} runs: ${Object.entries(c)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')}`,
  );
}

async function workerMode(o: GridOpts): Promise<void> {
  if (!o.plan) throw new OptionError('--worker needs --plan FILE');
  if (!o.resDir) throw new OptionError('--worker needs --res-dir DIR');
  const plan = readPlan(o.plan);
  let only: GridRun[] | undefined;
  if (o.index !== undefined) {
    const run = plan.runs[o.index];
    if (!run) throw new OptionError(`--index ${o.index}: the plan ${o.plan} has ${plan.runs.length} runs`);
    only = [run];
  }
  const out = await runWorker({
    plan,
    resDir: o.resDir,
    dataDir: o.dataDir,
    backend: o.backend,
    retryFailed: o.retryFailedBefore ?? o.retryFailed ?? false,
    only,
    saveModels: o.saveModels,
    locks: { ...LOCK_DEFAULTS, timeout: o.lockTimeout },
  });
  if (out.failed.length) process.exitCode = only ? 1 : 3;
}

async function gridAction(o: GridOpts): Promise<void> {
  if (o.worker) return workerMode(o);
  const loaded = loadGrid(o);
  if (o.printGrid) {
    if (!loaded.grid) throw new OptionError('--print-grid prints one protocol at a time');
    process.stdout.write(gridToYaml(loaded.grid));
    return;
  }
  const resDir = o.resDir ?? path.join('res', o.scale ?? loaded.name);
  existingDataDirs(o.dataDir); // a mistyped --data-dir fails here, not in every run
  let plan = loaded.plan;
  const missing = missingData(plan.runs, o.dataDir);
  if (missing.size) {
    const names = [...new Set([...missing.values()].flat())];
    const where = dataDirs(o.dataDir).join(', ');
    if (o.skipUnavailable) {
      plan = { ...plan, runs: plan.runs.filter((r) => !missing.has(r.id)) };
      process.stderr.write(
        `hat grid: left out ${missing.size} runs that need ${names.join(', ')} (not in ${where}); --skip-unavailable\n`,
      );
    } else if (!o.dryRun) {
      process.stderr.write(
        `hat grid: ${missing.size} runs need ${names.join(', ')}, not in ${where}: they will fail ` +
          '(fetch with `hat data get NAME`, or leave them out with --skip-unavailable)\n',
      );
    }
  }
  if (o.dryRun) return dryRun(plan, resDir, o.lockTimeout, o.skipUnavailable ? new Map<string, string[]>() : missing);
  const planFile = savePlan(resDir, plan, 'the grid files');

  if (o.slurm) {
    const status = scan(resDir, plan.runs, { timeout: o.lockTimeout });
    const pending = plan.runs.filter((r) => {
      const s = status.get(r.id)!.state;
      return s === 'queued' || s === 'partial' || (s === 'failed' && o.retryFailed);
    });
    if (!pending.length) {
      console.log(`${plan.name}: no pending runs in ${resDir} (${plan.runs.length} runs); nothing to submit`);
      return;
    }
    const job = writeSlurmJob(
      { ...plan, runs: pending },
      {
        resDir,
        dataDir: o.dataDir !== undefined ? dataDirs(o.dataDir).join(path.delimiter) : undefined,
        backend: o.backend,
        saveModels: o.saveModels,
        command: `hat ${process.argv.slice(2).join(' ')}`,
        slurm: {
          partition: o.partition,
          time: o.time,
          mem: o.mem,
          cpusPerTask: o.cpusPerTask,
          out: o.slurmOut,
          maxParallel: o.maxParallel,
          threads: o.threads,
        },
      },
    );
    console.log(`${plan.name}: ${job.runs} pending runs of ${plan.runs.length}; job-array script ${job.script}`);
    if (o.submit) console.log(`submitted job ${submit(job.script)}`);
    else console.log(`submit it with: sbatch ${job.script}`);
    return;
  }

  const out = await runLocally(`hat grid: ${plan.name}`, {
    plan,
    planFile,
    resDir,
    dataDir: o.dataDir,
    backend: o.backend,
    workers: o.workers,
    threads: o.threads,
    retryFailed: o.retryFailed,
    lockTimeout: o.lockTimeout,
    saveModels: o.saveModels,
    locks: { ...LOCK_DEFAULTS, timeout: o.lockTimeout },
    progress: o.progress,
    statusInterval: o.statusInterval,
  });
  console.log(outcomeReport(plan.name, resDir, out));
  if (out.problems.length) process.exitCode = 1;
}

export function gridCommand(program: Command): void {
  program
    .command('grid')
    .description(
      'run a protocol of the paper (or a grid file) into one results folder: locally with N workers, or as a Slurm job array',
    )
    .addOption(
      new Option(
        '--protocol <names>',
        `a protocol of the paper (see below), several comma-separated, or all: one plan, the workers going on from one to the next (${PROTOCOLS.join(', ')})`,
      ).argParser(protocolList),
    )
    .addOption(new Option('--scale <scale>', 'how much of it (see below)').choices([...SCALES]))
    .addOption(
      new Option('--method <method>', "reference: the reference code's IMM-mode and PNN; paper: also the paper's")
        .choices([...METHODS])
        .default('reference'),
    )
    .option('--file <grid.yaml>', 'a grid file instead of a protocol (YAML or JSON; see src/grid/schema.ts)')
    .option('--res-dir <dir>', 'results folder (default res/SCALE, or res/GRID-NAME for --file)')
    .addOption(dataDirOption())
    .addOption(backendOption())
    .addOption(
      new Option(
        '--workers <n>',
        `local worker processes (default: one per core, ${os.availableParallelism()} here, but no more than the runs left; on 2 cores, 2 x 1 thread trained 1.4x (AlexNet) and 1.6x (MLP) the HAT samples/s of 1 x 2 threads: bench/README.md)`,
      ).argParser(int('--workers', 1)),
    )
    .addOption(
      new Option(
        '--threads <n>',
        'TensorFlow threads per worker (TF_NUM_INTRAOP/INTEROP_THREADS; default: cores / workers with several workers)',
      ).argParser(int('--threads', 1)),
    )
    .option('--retry-failed', 'rerun the runs that failed before (their NAME.failed.json)')
    .option('--dry-run', 'list the runs, their ids and what is done, running, failed or pending; run nothing')
    .option('--print-grid', 'print the grid (a protocol at its scale) as a YAML grid file and stop')
    .option('--skip-unavailable', 'leave out the runs whose datasets are not in the data folders')
    .option('--slurm', 'write a Slurm job-array script for the pending runs instead of running them')
    .option('--submit', 'with --slurm: submit it (sbatch --parsable) and print the job id')
    .option('--partition <name>', 'with --slurm: partition')
    .addOption(
      new Option('--time <limit>', 'with --slurm: time limit per run (e.g. 12:00:00, 2-00:00:00)').argParser(slurmTime),
    )
    .addOption(new Option('--mem <size>', 'with --slurm: memory per run (e.g. 8G)').argParser(slurmMemory))
    .addOption(
      new Option('--cpus-per-task <n>', 'with --slurm: cores per run (also its TensorFlow threads)').argParser(
        int('--cpus-per-task', 1),
      ),
    )
    .option('--slurm-out <dir>', "with --slurm: folder of the tasks' output files (default RES_DIR/.grid/slurm)")
    .addOption(
      new Option('--max-parallel <n>', 'with --slurm: at most n array tasks at once').argParser(
        int('--max-parallel', 1),
      ),
    )
    .addOption(
      new Option('--lock-timeout <seconds>', 'a lock without heartbeat for this long is stale (heartbeat every 30 s)')
        .argParser(positive('--lock-timeout'))
        .default(LOCK_DEFAULTS.timeout),
    )
    .addOption(
      new Option('--status-interval <seconds>', 'seconds between status lines when not on a terminal')
        .argParser(positive('--status-interval'))
        .default(60),
    )
    .addOption(progressOption())
    .option('--save-models', "save every run's trained model into RES_DIR/models/NAME (hat predict, export, capacity)")
    .addOption(new Option('--worker', 'internal: run as a worker of a plan').hideHelp())
    .addOption(new Option('--plan <file>', 'internal: the plan of a worker').hideHelp())
    .addOption(new Option('--index <i>', 'internal: only run i of the plan').argParser(int('--index')).hideHelp())
    .addOption(new Option('--retry-failed-before <time>', 'internal: retry failures recorded before').hideHelp())
    .addHelpText('after', gridHelp())
    .action(gridAction);
}

/**
 * `npm run monitor -- capacity|compression ...`: the monitoring runs behind paper Figs. 5-7 (src/monitor.ts),
 * written where notebooks 04 and 05 look for them (RES_DIR/monitor/, RES_DIR/compression/).
 *
 *   npm run monitor -- capacity -e mixture -s 0                 # HAT with per-epoch gate logs (Figs. 5, 6)
 *   npm run monitor -- compression --tasks MNIST,CIFAR100       # single-task compression (Fig. 7)
 *   npm run monitor -- compression                              # every mixture dataset found
 */
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { buildExperiment, EXPERIMENTS, ExperimentName } from '../src/data/experiments';
import { compressionFile, monitorFile, runCapacityMonitor, runCompression } from '../src/monitor';
import { createProgress, ProgressMode } from '../src/progress';

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, got ${v}`);
  return n;
};
const num = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`expected a positive number, got ${v}`);
  return n;
};
const widths = (v: string): number[] => v.split(',').map(int);

interface Common { seed: number; nepochs: number; maxTrain?: number; maxTest?: number; hidden?: number[]; smax: number; dataDir?: string; resDir: string; backend?: string; progress: ProgressMode }

function common(cmd: Command): Command {
  return cmd
    .option('-s, --seed <n>', 'seed (task order, splits, initial weights)', (v) => Number(v), 0)
    .option('--nepochs <n>', 'max epochs per task', int, 200)
    .option('--max-train <n>', 'cap on training samples per task', int)
    .option('--max-test <n>', 'cap on test samples per task', int)
    .option('--hidden <widths>', 'MLP hidden widths (MNIST setups)', widths)
    .option('--smax <x>', 'HAT smax', num, 400)
    .option('--data-dir <dirs>', 'dataset folders (default: $HAT_DATA_DIR or dat)')
    .option('--res-dir <dir>', 'results folder', 'res')
    .option('--backend <name>', 'compute backend')
    .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'lines', 'quiet']).default('lines'));
}

const program = new Command('monitor').description('monitoring runs of HAT for the capacity, reuse and compression figures');

common(program.command('capacity').description('HAT on a task sequence, gates and weight usage after every epoch (Figs. 5 and 6)'))
  .addOption(new Option('-e, --experiment <name>', 'experiment').choices([...EXPERIMENTS]).default('mixture'))
  .option('--tasks <n>', 'only the first n tasks', int)
  .option('-c, --c <x>', 'HAT c', num, 0.75)
  .action(async (o: Common & { experiment: ExperimentName; tasks?: number; c: number }) => {
    const file = monitorFile(o.resDir, o.experiment, o.seed);
    const log = await runCapacityMonitor({
      experiment: o.experiment, seed: o.seed, tasks: o.tasks, maxTrain: o.maxTrain, maxTest: o.maxTest, hidden: o.hidden, train: { nepochs: o.nepochs },
      smax: o.smax, c: o.c, dataDir: o.dataDir, backend: o.backend, file, progress: createProgress(o.progress),
    });
    console.log(`${log.tasks.length} tasks, ${log.epochs.length} epoch records, final usage ${(100 * log.epochs[log.epochs.length - 1].totalUsage).toFixed(2)}% of weights; wrote ${file}`);
  });

common(program.command('compression').description('single-task HAT with U(0,2) embeddings: weights kept vs accuracy per epoch (Fig. 7)'))
  .addOption(new Option('-e, --experiment <name>', 'experiment whose tasks to compress').choices([...EXPERIMENTS]).default('mixture'))
  .option('--tasks <names>', 'comma-separated task names (default: every task of the experiment)')
  .option('-c, --c <x>', 'HAT c', num, 1.5)
  .action(async (o: Common & { experiment: ExperimentName; tasks?: string; c: number }) => {
    const names = o.tasks ? o.tasks.split(',').map((s) => s.trim()) : buildExperiment(o.experiment, { seed: o.seed, dataDir: o.dataDir, maxTrain: 1, maxTest: 1 }).tasks.map((t) => t.name);
    for (const task of names) {
      const file = compressionFile(o.resDir, task, o.seed);
      const log = await runCompression({
        experiment: o.experiment, task, seed: o.seed, maxTrain: o.maxTrain, maxTest: o.maxTest, hidden: o.hidden, train: { nepochs: o.nepochs },
        smax: o.smax, c: o.c, dataDir: o.dataDir, backend: o.backend, file, progress: createProgress(o.progress),
      });
      console.log(`${task}: ${log.final.compression.toFixed(2)}% of weights kept, valid acc ${(100 * log.final.validAccuracy).toFixed(1)}% (SGD ${log.sgdValidAccuracy === undefined ? '-' : (100 * log.sgdValidAccuracy).toFixed(1)}%); wrote ${path.relative('.', file)}`);
    }
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`monitor: ${(e as Error).message}\n`);
  process.exitCode = 1;
});

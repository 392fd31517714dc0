/**
 * The `hat` command line: run one experiment, run the quick reproduction, summarise result files, HAT
 * monitoring runs for the figures, datasets and backends. `hat --help` and `hat COMMAND --help` describe every option.
 */
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_CHOICES, initBackend } from './backend';
import { APPROACHES, OptionError, TABLE1_APPROACHES } from './approaches/index';
import { DATASETS, dataDirs, datasetListing, findDataset } from './data/datasets';
import { DataFileError } from './data/idx';
import { TransferMode, createTransferProgress } from './data/download';
import { SOURCES, getDataset } from './data/sources/index';
import { EXPERIMENTS, ExperimentName, buildExperiment } from './data/experiments';
import { compressionFile, monitorFile, runCapacityMonitor, runCompression } from './monitor';
import { ProgressMode, createProgress } from './progress';
import { attachForgetting, runExperiment } from './run';
import { listResults, RunResult } from './results';
import { TRAIN_DEFAULTS } from './train';

function int(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}
function positive(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}
function fraction(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('must be a fraction in (0, 1)');
  return n;
}
function widths(v: string): number[] {
  const ws = v.split(',').map(Number);
  if (!ws.length || ws.length > 3 || ws.some((w) => !Number.isInteger(w) || w < 1)) throw new InvalidArgumentError('give 1 to 3 positive integer widths, e.g. 2000,2000');
  return ws;
}
const collect = (v: string, prev: string[]): string[] => [...prev, v];

const approachHelp = Object.values(APPROACHES)
  .map((a) => [`  ${a.id.padEnd(12)} ${a.help}`, ...Object.entries(a.parameters).map(([k, p]) => `${' '.repeat(17)}${`${k}=${p.default}`.padEnd(20)} ${p.help}`)].join('\n'))
  .join('\n');

interface ProfileDefaults {
  nepochs: number;
  resDir: string;
  tasks?: number;
  maxTrain?: number;
}

function commonRunOptions(cmd: Command, d: ProfileDefaults = { nepochs: TRAIN_DEFAULTS.nepochs, resDir: 'res' }): Command {
  return cmd
    .addOption(new Option('--nepochs <n>', 'max epochs per task').argParser(int('--nepochs', 1)).default(d.nepochs))
    .addOption(new Option('--lr <x>', 'initial learning rate of every task').argParser(positive('--lr')).default(TRAIN_DEFAULTS.lr))
    .addOption(new Option('--batch-size <n>', 'mini-batch size').argParser(int('--batch-size', 1)).default(TRAIN_DEFAULTS.batchSize))
    .addOption(new Option('--patience <n>', 'epochs without improvement before lr /= 3').argParser(int('--patience', 1)).default(TRAIN_DEFAULTS.patience))
    .addOption(new Option('--tasks <n>', 'learn only the first n tasks of the sequence').argParser(int('--tasks', 1)).default(d.tasks))
    .addOption(new Option('--max-train <n>', 'cap on training samples per task (quick runs)').argParser(int('--max-train', 1)).default(d.maxTrain))
    .addOption(new Option('--max-test <n>', 'cap on test samples per task').argParser(int('--max-test', 1)))
    .addOption(new Option('--validation <fraction>', 'validation fraction (default: 0.15 mixture, 0.1 cifar, the training set for MNIST setups)').argParser(fraction))
    .addOption(new Option('--hidden <widths>', 'MLP hidden widths (default HAT 2000,2000; baselines 800,800,800)').argParser(widths))
    .addOption(new Option('--init <scheme>', 'weight initialisation: pytorch (reference code) or xavier (paper text)').choices(['pytorch', 'xavier']).default('pytorch'))
    .addOption(new Option('--data-dir <dirs>', `dataset folders, '${path.delimiter}'-separated (default: $HAT_DATA_DIR or dat)`))
    .addOption(new Option('--res-dir <dir>', 'results folder').default(d.resDir))
    .addOption(new Option('--backend <name>', 'compute backend (default: $HAT_BACKEND or auto)').choices([...BACKEND_CHOICES]))
    .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'lines', 'quiet']).default('auto'));
}

interface CommonOpts {
  nepochs: number; lr: number; batchSize: number; patience: number; tasks?: number; maxTrain?: number; maxTest?: number;
  validation?: number; hidden?: number[]; init: 'pytorch' | 'xavier'; dataDir?: string; resDir: string; backend?: string; progress: ProgressMode;
}

function runOptions(o: CommonOpts) {
  return {
    train: { nepochs: o.nepochs, lr: o.lr, batchSize: o.batchSize, patience: o.patience },
    tasks: o.tasks, maxTrain: o.maxTrain, maxTest: o.maxTest, validation: o.validation, hidden: o.hidden, init: o.init,
    dataDir: o.dataDir, resDir: o.resDir, backend: o.backend, progress: createProgress(o.progress),
  };
}

const pct = (x: number | undefined, digits = 1): string => (x === undefined || !Number.isFinite(x) ? '-' : (100 * x).toFixed(digits));
const num = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(3));

/** Rows of a summary table: one per result, with average accuracy and forgetting ratios. */
/** Table 1 (mixture) from the worst rho<=8 to the best (spec §8.1). */
export const PAPER_TABLE1_ORDER = ['lfl', 'lwf', 'sgd', 'imm-mode', 'sgd-frozen', 'imm-mean', 'ewc', 'pathnet', 'progressive', 'hat'];

/** References first, then as the paper's Table 1: sorted by the final forgetting ratio, worst first. */
export function table1Order(results: RunResult[]): RunResult[] {
  const isReference = (r: RunResult) => r.config.approach === 'random' || r.config.approach === 'joint';
  const final = (r: RunResult) => r.forgetting?.meanUpTo[r.accuracy.length - 1] ?? -Infinity;
  const references = results.filter(isReference).sort((a, b) => b.config.approach.localeCompare(a.config.approach)); // random, then joint
  return [...references, ...results.filter((r) => !isReference(r)).sort((a, b) => final(a) - final(b))];
}

export function summaryTable(results: RunResult[]): string {
  const header = ['experiment', 'approach', 'seed', 'tasks', 'A<=T %', 'rho<=2', 'rho<=T', 'task-1 acc % (first -> last)', 'train s'];
  const rows = results.map((r) => {
    const T = r.accuracy.length;
    const rho = r.forgetting?.meanUpTo;
    return [
      r.config.protocol.experiment, r.config.tag, String(r.config.protocol.seed), String(T), pct(r.averageAccuracy[T - 1]),
      num(rho?.[Math.min(1, T - 1)]), num(rho?.[T - 1]), `${pct(r.accuracy[0]?.[0])} -> ${pct(r.accuracy[T - 1]?.[0])}`, r.timings.seconds.toFixed(0),
    ];
  });
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(header), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

function sourcesHelp(): string {
  return DATASETS.map((d) => {
    const s = SOURCES[d.name];
    const variants = s.variants.map((v) => `    --variant ${v.id}: ${v.files.map((f) => `${f.urls[0]}${f.md5 ? ` (md5 ${f.md5})` : ''}`).join(', ')}`);
    return [`  ${d.name}`, ...variants, `    --from: ${s.accepts}`].join('\n');
  }).join('\n');
}

export function buildProgram(): Command {
  const program = new Command('hat')
    .description('HAT (hard attention to the task, ICML 2018) and its baselines on TensorFlow.js')
    .showHelpAfterError('(run with --help for the options)')
    .configureOutput({ outputError: (s, write) => write(s) });

  commonRunOptions(
    program
      .command('run')
      .description('train one approach on one experiment and seed; writes RES_DIR/EXPERIMENT_TAG_SEED.{json,txt}')
      .addOption(new Option('-e, --experiment <name>', 'experiment (spec §6.1)').choices([...EXPERIMENTS]).makeOptionMandatory())
      .addOption(new Option('-a, --approach <id>', 'approach (see below)').choices(Object.keys(APPROACHES)).makeOptionMandatory())
      .addOption(new Option('-s, --seed <n>', 'run seed: task order, split, shuffles, initial weights, dropout').argParser(int('--seed')).default(0))
      .option('-p, --parameter <name=value>', 'approach hyperparameter, repeatable or comma-separated (e.g. smax=400,c=0.75)', collect, [])
      .option('--tag <name>', 'name in result files and tables (default: approach id plus non-default parameters)')
      .option('--no-resume', 'start afresh even if a checkpoint of the same run exists'),
  )
    .addHelpText('after', `\nApproaches:\n${approachHelp}\n\nThe forgetting ratio needs the random and joint runs of the same experiment, seed and options in RES_DIR;\nrun them too (any order) and \`hat table\` fills it in.`)
    .action(async (o: CommonOpts & { experiment: ExperimentName; approach: string; seed: number; parameter: string[]; tag?: string; resume: boolean }) => {
      const { result, file, approach } = await runExperiment({ ...runOptions(o), experiment: o.experiment, approach: o.approach, seed: o.seed, parameters: o.parameter, tag: o.tag, resume: o.resume });
      approach.dispose();
      console.log(summaryTable([result]));
      console.log(`\nwrote ${file}`);
    });

  commonRunOptions(
    program
      .command('quick')
      .description('quick reproduction on the embedded MNIST data: HAT and every baseline of the paper\'s Table 1, with the forgetting-ratio table')
      .addOption(new Option('-e, --experiment <name>', 'experiment').choices(['pmnist', 'mnist2']).default('pmnist'))
      .addOption(new Option('-s, --seed <n>', 'run seed').argParser(int('--seed')).default(0))
      .option('--approaches <ids>', 'comma-separated approaches', TABLE1_APPROACHES.join(',')),
    { nepochs: 20, resDir: path.join('res', 'quick'), tasks: 4, maxTrain: 2500 },
  ).action(async (o: CommonOpts & { experiment: ExperimentName; seed: number; approaches: string }) => {
    const ids = o.approaches.split(',').map((s) => s.trim());
    for (const id of ids) if (!APPROACHES[id]) throw new OptionError(`unknown approach '${id}' in --approaches`);
    // the references go first so that every later result gets its forgetting ratio
    const ordered = [...ids.filter((i) => i === 'random' || i === 'joint'), ...ids.filter((i) => i !== 'random' && i !== 'joint')];
    const results: RunResult[] = [];
    for (const id of ordered) {
      const { result, approach } = await runExperiment({ ...runOptions(o), experiment: o.experiment, approach: id, seed: o.seed });
      approach.dispose();
      results.push(result);
    }
    console.log(`\n${summaryTable(table1Order(results))}`);
    console.log(`\nrho = forgetting ratio (0: as good as joint training, -1: random guessing); rows as the paper's Table 1,\nworst rho<=T first; the paper's mixture order for comparison: ${PAPER_TABLE1_ORDER.join(' < ')}. Results in ${o.resDir}/`);
  });

  program
    .command('table')
    .description('summarise the complete result files of a folder (accuracy and forgetting ratios)')
    .option('--res-dir <dir>', 'results folder', 'res')
    .addOption(new Option('-e, --experiment <name>', 'only this experiment').choices([...EXPERIMENTS]))
    .action((o: { resDir: string; experiment?: string }) => {
      const results = listResults(o.resDir).map((r) => r.result).filter((r) => !o.experiment || r.config.protocol.experiment === o.experiment);
      if (!results.length) throw new OptionError(`no complete result files in ${o.resDir}; run \`hat run\` or \`hat quick\` first`);
      results.forEach((r) => attachForgetting(r, o.resDir));
      // grouped by experiment and seed; within a group references first, then as Table 1 (worst final rho first)
      const rank = new Map(table1Order(results).map((r, i) => [r, i]));
      results.sort((a, b) => a.config.protocol.experiment.localeCompare(b.config.protocol.experiment) || a.config.protocol.seed - b.config.protocol.seed || rank.get(a)! - rank.get(b)!);
      console.log(summaryTable(results));
    });

  const monitor = program.command('monitor').description('HAT monitoring runs behind the capacity, reuse and compression figures (notebooks 04 and 05)');
  const monitorOptions = (cmd: Command): Command =>
    cmd
      .addOption(new Option('-s, --seed <n>', 'seed (task order, splits, initial weights)').argParser(int('--seed')).default(0))
      .addOption(new Option('--nepochs <n>', 'max epochs per task').argParser(int('--nepochs', 1)).default(TRAIN_DEFAULTS.nepochs))
      .addOption(new Option('--max-train <n>', 'cap on training samples per task').argParser(int('--max-train', 1)))
      .addOption(new Option('--max-test <n>', 'cap on test samples per task').argParser(int('--max-test', 1)))
      .addOption(new Option('--hidden <widths>', 'MLP hidden widths (MNIST setups)').argParser(widths))
      .addOption(new Option('--smax <x>', 'HAT smax').argParser(positive('--smax')).default(400))
      .option('--data-dir <dirs>', 'dataset folders (default: $HAT_DATA_DIR or dat)')
      .option('--res-dir <dir>', 'results folder', 'res')
      .addOption(new Option('--backend <name>', 'compute backend').choices([...BACKEND_CHOICES]))
      .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'lines', 'quiet']).default('auto'));
  interface MonitorOpts { seed: number; nepochs: number; maxTrain?: number; maxTest?: number; hidden?: number[]; smax: number; dataDir?: string; resDir: string; backend?: string; progress: ProgressMode }
  monitorOptions(monitor.command('capacity').description('HAT on a task sequence with its gates and weight usage after every epoch (Figs. 5 and 6); writes RES_DIR/monitor/'))
    .addOption(new Option('-e, --experiment <name>', 'experiment').choices([...EXPERIMENTS]).default('mixture'))
    .addOption(new Option('--tasks <n>', 'only the first n tasks').argParser(int('--tasks', 1)))
    .addOption(new Option('-c, --c <x>', 'HAT c').argParser(positive('-c')).default(0.75))
    .action(async (o: MonitorOpts & { experiment: ExperimentName; tasks?: number; c: number }) => {
      const file = monitorFile(o.resDir, o.experiment, o.seed);
      const log = await runCapacityMonitor({
        experiment: o.experiment, seed: o.seed, tasks: o.tasks, maxTrain: o.maxTrain, maxTest: o.maxTest, hidden: o.hidden, train: { nepochs: o.nepochs },
        smax: o.smax, c: o.c, dataDir: o.dataDir, backend: o.backend, file, progress: createProgress(o.progress),
      });
      console.log(`${log.tasks.length} tasks, ${log.epochs.length} epoch records, final usage ${(100 * log.epochs[log.epochs.length - 1].totalUsage).toFixed(2)}% of weights; wrote ${file}`);
    });
  monitorOptions(monitor.command('compression').description('single-task HAT with U(0,2) embeddings: weights kept vs validation accuracy per epoch (Fig. 7); writes RES_DIR/compression/'))
    .addOption(new Option('-e, --experiment <name>', 'experiment whose tasks to compress').choices([...EXPERIMENTS]).default('mixture'))
    .option('--tasks <names>', 'comma-separated task names (default: every task of the experiment)')
    .addOption(new Option('-c, --c <x>', 'HAT c').argParser(positive('-c')).default(1.5))
    .action(async (o: MonitorOpts & { experiment: ExperimentName; tasks?: string; c: number }) => {
      const names = o.tasks ? o.tasks.split(',').map((s) => s.trim()) : buildExperiment(o.experiment, { seed: o.seed, dataDir: o.dataDir, maxTrain: 1, maxTest: 1 }).tasks.map((t) => t.name);
      for (const task of names) {
        const file = compressionFile(o.resDir, task, o.seed);
        const log = await runCompression({
          experiment: o.experiment, task, seed: o.seed, maxTrain: o.maxTrain, maxTest: o.maxTest, hidden: o.hidden, train: { nepochs: o.nepochs },
          smax: o.smax, c: o.c, dataDir: o.dataDir, backend: o.backend, file, progress: createProgress(o.progress),
        });
        const sgd = log.sgdValidAccuracy === undefined ? '-' : (100 * log.sgdValidAccuracy).toFixed(1);
        console.log(`${task}: ${log.final.compression.toFixed(2)}% of weights kept, valid acc ${(100 * log.final.validAccuracy).toFixed(1)}% (SGD ${sgd}%); wrote ${path.relative('.', file)}`);
      }
    });

  const data = program.command('data').description('datasets: list the cache, download and convert (`hat data get`)');
  data
    .command('list')
    .description('the eight datasets: cached or missing, counts, classes, shapes, size on disk and source')
    .option('--data-dir <dirs>', 'dataset folders (default: $HAT_DATA_DIR or dat)')
    .action((o: { dataDir?: string }) => {
      const dirs = dataDirs(o.dataDir);
      console.log(`data folders: ${dirs.join(', ')}`);
      const rows = datasetListing(dirs);
      const header = ['dataset', 'train', 'test', 'classes', 'shape', 'MB', 'source', 'folder'];
      const cells = rows.map((r) => [r.name, r.train, r.test, r.classes, r.shape, r.mb, r.source, r.folder]);
      const w = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
      const line = (c: string[]) => c.map((x, i) => (i >= 1 && i <= 5 ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  ').trimEnd();
      console.log(['', line(header), ...cells.map(line)].join('\n'));
      const missing = rows.filter((r) => r.train === '-').map((r) => r.name);
      if (missing.length) console.log(`\nmissing: ${missing.join(', ')} (fetch with \`hat data get NAME\` or \`hat data get all\`)`);
    });

  data
    .command('get')
    .description('download a dataset from its public source (or import local files), verify it and write it into the cache')
    .argument('<names...>', `dataset names (${DATASETS.map((d) => d.name).join(', ')}) or all`)
    .option('--data-dir <dirs>', 'cache folder to write (the first of the list; default: $HAT_DATA_DIR or dat)')
    .option('--from <paths...>', 'import these downloaded archives, files or folders instead of downloading')
    .option('--variant <id>', 'which distribution to download (see below; default: the first)')
    .option('--force', 'rebuild a dataset that is already cached')
    .option('--no-verify', 'with --from: import files named like a published file even if their checksum differs (recorded as unverified)')
    .option('--keep-downloads', 'keep the downloaded archives in DIR/downloads/NAME (default: deleted after conversion)')
    .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'lines', 'quiet']).default('auto'))
    .addHelpText('after', `\nSources (downloads resume after an interruption; checksums are verified where published, else recorded):\n${sourcesHelp()}`)
    .action(async (names: string[], o: { dataDir?: string; from?: string[]; variant?: string; force?: boolean; keepDownloads?: boolean; verify: boolean; progress: TransferMode }) => {
      const known = DATASETS.map((d) => d.name);
      const wanted = names.includes('all') ? known : names;
      for (const n of wanted) if (!known.includes(n)) throw new OptionError(`unknown dataset '${n}'; choose from ${known.join(', ')} or all`);
      if (o.variant && wanted.length > 1) throw new OptionError('--variant applies to one dataset at a time');
      const dir = dataDirs(o.dataDir)[0];
      const progress = createTransferProgress(o.progress);
      const failed: string[] = [];
      for (const name of wanted) {
        const cached = findDataset(name, [dir]);
        if (cached && !o.force) {
          console.log(`${name}: already in ${cached} (--force rebuilds it)`);
          continue;
        }
        try {
          const m = await getDataset(name, { dir, from: o.from, variant: o.variant, keepDownloads: o.keepDownloads, verify: o.verify, progress });
          const mb = Object.values(m.files).reduce((a, f) => a + f.bytes, 0) / 1048576;
          console.log(`${name}: ${m.train.n} train, ${m.test.n} test, ${m.classes} classes, ${m.shape.join('x')}, ${mb.toFixed(1)} MB in ${path.join(dir, name)} (${m.source.variant})`);
        } catch (e) {
          if (wanted.length === 1 || !(e instanceof DataFileError)) throw e;
          console.error(`${name}: ${(e as Error).message}`);
          failed.push(name);
        }
      }
      if (failed.length) throw new DataFileError('hat data get', `${failed.length} of ${wanted.length} datasets could not be fetched (${failed.join(', ')})`, 'See the messages above for each.');
    });

  program
    .command('backend')
    .description('initialise and describe the compute backend that runs would use')
    .addOption(new Option('--backend <name>', 'backend to try (default: $HAT_BACKEND or auto)').choices([...BACKEND_CHOICES]))
    .action(async (o: { backend?: string }) => {
      console.log(JSON.stringify(await initBackend(o.backend), null, 2));
    });
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    const err = e as Error;
    const known = ['OptionError', 'BackendError', 'DataFileError', 'NonFiniteLossError'].includes(err.name);
    process.stderr.write(`hat: ${known ? err.message : err.stack ?? err}\n`);
    process.exitCode = known ? 2 : 1;
  }
}

if (require.main === module) void main();

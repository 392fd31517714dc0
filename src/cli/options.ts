/** Option parsers and the options every training command shares (`hat run`, `hat quick`, `hat grid`). */
import * as path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_CHOICES } from '../backend/index';
import { DATASETS } from '../data/datasets';
import { PROGRESS_MODES, type ProgressMode } from '../training/progress';
import { TRAIN_DEFAULTS } from '../training/types';
import type { RunOptions } from '../runs/run';
import { type RunShape, runShape } from '../runs/shape';
import { INIT_SCHEMES, type InitScheme } from '../nets/config';
import { ALL_PROTOCOLS, PROTOCOLS, type ProtocolName } from '../grid/protocols';

export function int(name: string, min = 0) {
  return (v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}
export function positive(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}
export function fraction(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('must be a fraction in (0, 1)');
  return n;
}
export function widths(v: string): number[] {
  const ws = v.split(',').map(Number);
  if (!ws.length || ws.length > 3 || ws.some((w) => !Number.isInteger(w) || w < 1))
    throw new InvalidArgumentError('give 1 to 3 positive integer widths, e.g. 2000,2000');
  return ws;
}
export function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
export const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Dataset names, comma-separated, each one of the eight (`hat data list`). */
export function datasetNames(v: string): string[] {
  const names = list(v);
  const known = DATASETS.map((d) => d.name);
  if (!names.length) throw new InvalidArgumentError(`name one or more datasets: ${known.join(', ')}`);
  for (const n of names)
    if (!known.includes(n)) throw new InvalidArgumentError(`unknown dataset '${n}'; choose from ${known.join(', ')}`);
  return names;
}

/** A name that becomes part of file names: letters, digits and . _ + - = , (no spaces or slashes). */
export function fileTag(v: string): string {
  if (!/^[\w.+=,-]+$/.test(v) || v.startsWith('.'))
    throw new InvalidArgumentError('use letters, digits and . _ + - = , only (it becomes part of file names)');
  return v;
}

/** A Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS. */
export function slurmTime(v: string): string {
  if (!/^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}(:\d{1,2}){0,2})$/.test(v))
    throw new InvalidArgumentError('a Slurm time limit: MINUTES, HH:MM:SS, D-HH or D-HH:MM:SS (e.g. 12:00:00)');
  return v;
}

/** A Slurm memory size: a number with an optional unit K, M, G or T (e.g. 8G). */
export function slurmMemory(v: string): string {
  if (!/^\d+[KMGT]?$/i.test(v)) throw new InvalidArgumentError('a number with an optional unit K, M, G or T (e.g. 8G)');
  return v;
}

export const progressOption = () =>
  new Option('--progress <mode>', 'progress display (auto: a bar on a terminal, lines otherwise)')
    .choices([...PROGRESS_MODES])
    .default('auto');
export const backendOption = () =>
  new Option('--backend <name>', 'compute backend (default: $HAT_BACKEND or auto)').choices([...BACKEND_CHOICES]);
export const dataDirOption = () =>
  new Option('--data-dir <dirs>', `dataset folders, '${path.delimiter}'-separated (default: $HAT_DATA_DIR or dat)`);

export interface ProtocolDefaults {
  nepochs: number;
  resDir: string;
  tasks?: number;
  maxTrain?: number;
}

/** The protocol options of spec §4 and the data caps of quick runs. */
export function protocolOptions(
  cmd: Command,
  d: ProtocolDefaults = { nepochs: TRAIN_DEFAULTS.nepochs, resDir: 'res' },
): Command {
  return cmd
    .addOption(new Option('--nepochs <n>', 'max epochs per task').argParser(int('--nepochs', 1)).default(d.nepochs))
    .addOption(
      new Option('--lr <x>', 'initial learning rate of every task')
        .argParser(positive('--lr'))
        .default(TRAIN_DEFAULTS.lr),
    )
    .addOption(
      new Option('--batch-size <n>', 'mini-batch size')
        .argParser(int('--batch-size', 1))
        .default(TRAIN_DEFAULTS.batchSize),
    )
    .addOption(
      new Option('--patience <n>', 'epochs without improvement before lr /= 3')
        .argParser(int('--patience', 1))
        .default(TRAIN_DEFAULTS.patience),
    )
    .addOption(
      new Option('--tasks <n>', 'learn only the first n tasks of the sequence')
        .argParser(int('--tasks', 1))
        .default(d.tasks),
    )
    .addOption(
      new Option('--datasets <names>', "mixture: only these datasets, comma-separated (in the seed's order)").argParser(
        datasetNames,
      ),
    )
    .addOption(
      new Option('--max-train <n>', 'cap on training samples per task (quick runs)')
        .argParser(int('--max-train', 1))
        .default(d.maxTrain),
    )
    .addOption(new Option('--max-test <n>', 'cap on test samples per task').argParser(int('--max-test', 1)))
    .addOption(
      new Option(
        '--validation <fraction>',
        'validation fraction (default: 0.15 mixture, 0.1 cifar, the training set for MNIST setups)',
      ).argParser(fraction),
    )
    .addOption(
      new Option('--hidden <widths>', 'MLP hidden widths (default HAT 2000,2000; baselines 800,800,800)').argParser(
        widths,
      ),
    )
    .addOption(
      new Option('--init <scheme>', 'weight initialisation: pytorch (reference code) or xavier (paper text)')
        .choices(INIT_SCHEMES)
        .default('pytorch'),
    )
    .addOption(dataDirOption())
    .addOption(new Option('--res-dir <dir>', 'results folder').default(d.resDir))
    .addOption(backendOption())
    .addOption(progressOption());
}

export interface ProtocolOpts extends Omit<RunShape, 'init'> {
  nepochs: number;
  lr: number;
  batchSize: number;
  patience: number;
  init: InitScheme;
  dataDir?: string;
  resDir: string;
  backend?: string;
  progress: ProgressMode;
}

/** The run options the protocol options give. */
export function protocolRunOptions(o: ProtocolOpts): Omit<RunOptions, 'experiment' | 'approach' | 'seed'> {
  return {
    train: { nepochs: o.nepochs, lr: o.lr, batchSize: o.batchSize, patience: o.patience },
    ...runShape(o),
    dataDir: o.dataDir,
    resDir: o.resDir,
    backend: o.backend,
    progress: o.progress,
  };
}

/** `--protocol table1`, `--protocol usage,table1`, `--protocol all`. */
export function protocolList(value: string): ProtocolName[] {
  const names = value.split(',').map((s) => s.trim());
  if (names.includes('all')) return [...ALL_PROTOCOLS];
  for (const n of names)
    if (!(PROTOCOLS as readonly string[]).includes(n))
      throw new InvalidArgumentError(
        `'${n}' is not a protocol; choose from ${PROTOCOLS.join(', ')} or all (several: comma-separated)`,
      );
  return [...new Set(names)] as ProtocolName[];
}

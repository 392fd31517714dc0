/**
 * The paper's four experimental setups (spec §6) as sequences of tasks, each with train/validation/test
 * splits, built reproducibly from the run seed: task order, validation split and permutations.
 */
import * as tf from '@tensorflow/tfjs-core';
import { OptionError } from '../core/errors';
import { Rng } from '../core/rng';
import { type NetworkKind } from '../nets/config';
import {
  DATASETS,
  type DatasetInfo,
  type ImageSet,
  availableDatasets,
  datasetByName,
  existingDataDirs,
  loadImageSet,
} from './datasets';
import { DataFileError } from './idx';
import { type Preprocess, flatPreprocess, imagePreprocess } from './preprocess';
import { residentInputs } from './resident';

export const EXPERIMENTS = ['mnist2', 'pmnist', 'cifar', 'mixture'] as const;
export type ExperimentName = (typeof EXPERIMENTS)[number];

/** The network each setup trains (spec §6.1): the MLPs for the MNIST setups, the AlexNet-like trunk otherwise. */
export const EXPERIMENT_NETWORK: Readonly<Record<ExperimentName, NetworkKind>> = {
  mnist2: 'mlp',
  pmnist: 'mlp',
  cifar: 'alexnet',
  mixture: 'alexnet',
};

/** Some rows of a stored image set, with their (task-local) labels and how to turn them into inputs. */
export interface Split {
  images: Uint8Array;
  rows: Int32Array;
  labels: Int32Array;
  preprocess: Preprocess;
}

export interface Task {
  /** Position in the sequence (0-based). */
  index: number;
  name: string;
  classes: number;
  /** What each of the task's classes is (the dataset's label names, or their numbers). */
  classNames: string[];
  train: Split;
  /** May be the very same split as train (MNIST setups, spec §11.6). */
  valid: Split;
  test: Split;
  /** Where the data came from, for the result file. */
  source: string;
}

export interface Experiment {
  name: ExperimentName;
  network: NetworkKind;
  /** Per-sample network input shape. */
  inputShape: number[];
  tasks: Task[];
  /** Ids in the spec's tables (dataset ids for mixture, task/permutation ids otherwise). */
  order: number[];
  /** Datasets of the setup that are not available (mixture runs without them). */
  missing: string[];
  validation: number | 'train';
}

export interface ExperimentOptions {
  seed: number;
  /** Data folders (see dataDirs); default HAT_DATA_DIR or dat/. */
  dataDir?: string;
  /** Use only the first n tasks of the sequence. */
  tasks?: number;
  /** Mixture: only these datasets (names as in `hat data list`), in the seed's order. */
  datasets?: string[];
  /** Validation fraction; default per setup (15% mixture, 10% cifar, the training set for MNIST setups). */
  validation?: number;
  /** Cap on training samples per task (quick runs); the validation split shrinks in proportion. */
  maxTrain?: number;
  /** Cap on test samples per task. */
  maxTest?: number;
}

// Task orders used by the reference code for seeds 0-9 (spec §6.3), hard-coded to match the paper's sequences.
const MIXTURE_ORDERS = [
  [6, 2, 1, 7, 3, 0, 5, 4],
  [7, 2, 1, 6, 0, 4, 3, 5],
  [4, 1, 6, 2, 3, 7, 5, 0],
  [5, 7, 4, 6, 3, 1, 0, 2],
  [4, 7, 3, 0, 1, 5, 6, 2],
  [7, 2, 4, 1, 0, 5, 6, 3],
  [0, 5, 6, 7, 4, 3, 1, 2],
  [2, 5, 0, 6, 3, 1, 4, 7],
  [7, 0, 2, 6, 5, 1, 4, 3],
  [7, 1, 2, 3, 0, 5, 4, 6],
];
const TEN_TASK_ORDERS = [
  [2, 8, 4, 9, 1, 6, 7, 3, 0, 5],
  [2, 9, 6, 4, 0, 3, 1, 7, 8, 5],
  [4, 1, 5, 0, 7, 2, 3, 6, 9, 8],
  [5, 4, 1, 2, 9, 6, 7, 0, 3, 8],
  [3, 8, 4, 9, 2, 6, 0, 1, 5, 7],
  [9, 5, 2, 4, 7, 1, 0, 8, 6, 3],
  [8, 1, 7, 0, 6, 5, 2, 4, 3, 9],
  [8, 5, 0, 2, 1, 9, 7, 3, 6, 4],
  [8, 6, 9, 0, 2, 5, 7, 1, 4, 3],
  [8, 4, 7, 2, 1, 9, 3, 0, 6, 5],
];

/** The spec's order for seeds 0-9; other seeds get a seeded random order. */
export function taskOrder(experiment: ExperimentName, seed: number): number[] {
  switch (experiment) {
    case 'mnist2':
      return [0, 1];
    case 'mixture':
      return seed >= 0 && seed < 10 && Number.isInteger(seed)
        ? [...MIXTURE_ORDERS[seed]]
        : Array.from(new Rng(`order/mixture/${seed}`).permutation(8));
    default:
      return seed >= 0 && seed < 10 && Number.isInteger(seed)
        ? [...TEN_TASK_ORDERS[seed]]
        : Array.from(new Rng(`order/${experiment}/${seed}`).permutation(10));
  }
}

/** The fixed pixel permutation of pmnist task `id` (independent of the run seed, like the reference's). */
export function pmnistPermutation(id: number): Int32Array {
  return new Rng(`pmnist/permutation/${id}`).permutation(784);
}

function rowsWhere(set: ImageSet, keep: (label: number) => boolean): Int32Array {
  const rows: number[] = [];
  for (let i = 0; i < set.n; i++) if (keep(set.labels[i])) rows.push(i);
  return Int32Array.from(rows);
}

function split(set: ImageSet, rows: Int32Array, label: (l: number) => number, preprocess: Preprocess): Split {
  const labels = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) labels[i] = label(set.labels[rows[i]]);
  return { images: set.images, rows, labels, preprocess };
}

interface TaskSpec {
  name: string;
  classes: number;
  /** The dataset's names of its labels (before `label` maps them to the task's classes). */
  labelNames?: readonly string[];
  train: ImageSet;
  test: ImageSet;
  keep: (label: number) => boolean;
  label: (label: number) => number;
  preprocess: Preprocess;
}

function allRows(set: ImageSet): Int32Array {
  return Int32Array.from({ length: set.n }, (_, i) => i);
}

function makeTask(
  index: number,
  spec: TaskSpec,
  validation: number | 'train',
  rng: Rng,
  opts: ExperimentOptions,
): Task {
  const train = spec.train;
  let rows = rng
    .fork(`shuffle/${spec.name}`)
    .shuffle(spec.keep === everything ? allRows(train) : rowsWhere(train, spec.keep));
  let validRows: Int32Array | undefined;
  if (validation !== 'train') {
    const nValid = Math.floor(validation * rows.length);
    validRows = rows.subarray(0, nValid);
    rows = rows.subarray(nValid);
  }
  if (opts.maxTrain !== undefined && rows.length > opts.maxTrain) {
    rows = rows.subarray(0, opts.maxTrain);
    if (validRows && validation !== 'train')
      validRows = validRows.subarray(0, Math.max(1, Math.ceil((opts.maxTrain * validation) / (1 - validation))));
  }
  let testRows = spec.keep === everything ? allRows(spec.test) : rowsWhere(spec.test, spec.keep);
  if (opts.maxTest !== undefined && testRows.length > opts.maxTest) {
    testRows = rng.fork(`test/${spec.name}`).shuffle(testRows).subarray(0, opts.maxTest).sort();
  }
  const trainSplit = split(train, rows, spec.label, spec.preprocess);
  return {
    index,
    name: spec.name,
    classes: spec.classes,
    classNames: classNames(spec),
    train: trainSplit,
    valid: validRows ? split(train, validRows, spec.label, spec.preprocess) : trainSplit,
    test: split(spec.test, testRows, spec.label, spec.preprocess),
    source: train.source,
  };
}

/** Class k of a task is the dataset label l it keeps with label(l) = k (mnist2's second task: 5-9). */
function classNames(spec: TaskSpec): string[] {
  const names = Array.from({ length: spec.classes }, (_, k) => String(k));
  for (let l = 0; l < 256; l++) {
    if (!spec.keep(l)) continue;
    const k = spec.label(l);
    if (k >= 0 && k < spec.classes && names[k] === String(k)) names[k] = spec.labelNames?.[l] ?? String(l);
    if (l >= (spec.labelNames?.length ?? spec.classes * 20)) break;
  }
  return names;
}

const everything = (_label: number): boolean => true;
const identity = (l: number): number => l;

function imageTask(
  info: DatasetInfo,
  dirs: string[],
  name = info.title,
  keep = everything,
  label = identity,
  classes = info.classes,
  stats: DatasetInfo = info,
): TaskSpec {
  const train = loadImageSet(info.name, 'train', dirs);
  const test = loadImageSet(info.name, 'test', dirs);
  const channels = train.shape[2];
  const mean = channels === stats.mean.length ? stats.mean : new Array<number>(channels).fill(stats.mean[0]);
  const std = channels === stats.std.length ? stats.std : new Array<number>(channels).fill(stats.std[0]);
  return {
    name,
    classes,
    labelNames: info.labels,
    train,
    test,
    keep,
    label,
    preprocess: imagePreprocess(train.shape, 32, mean, std),
  };
}

/** Builds the task sequence of an experiment for a seed. Throws with advice when data is missing. */
export function buildExperiment(name: ExperimentName, opts: ExperimentOptions): Experiment {
  if (!(EXPERIMENTS as readonly string[]).includes(name))
    throw new Error(`unknown experiment '${name}'; choose one of ${EXPERIMENTS.join(', ')}`);
  if (opts.datasets && name !== 'mixture')
    throw new OptionError(`--datasets chooses the datasets of the mixture experiment; ${name} has its own data`);
  const dirs = existingDataDirs(opts.dataDir);
  const rng = new Rng(`data/${name}/${opts.seed}`);
  let order = taskOrder(name, opts.seed);
  let specs: TaskSpec[];
  let validation: number | 'train';
  const network = EXPERIMENT_NETWORK[name];
  let missing: string[] = [];

  if (name === 'mnist2' || name === 'pmnist') {
    validation = opts.validation ?? 'train';
    const train = loadImageSet('mnist', 'train', dirs);
    const test = loadImageSet('mnist', 'test', dirs);
    const mnistStats = [0.1307, 0.3081] as const; // the usual MNIST statistics, as the reference's MLP setups use
    const labelNames = datasetByName('mnist').labels;
    if (name === 'mnist2') {
      const pre = flatPreprocess(train.shape, ...mnistStats);
      const half = { classes: 5, labelNames, train, test, preprocess: pre };
      specs = [
        { name: 'MNIST 0-4', ...half, keep: (l) => l < 5, label: identity },
        { name: 'MNIST 5-9', ...half, keep: (l) => l >= 5, label: (l) => l - 5 },
      ];
    } else {
      specs = order.map((p) => ({
        name: `pMNIST-${p}`,
        classes: 10,
        labelNames,
        train,
        test,
        keep: everything,
        label: identity,
        preprocess: flatPreprocess(train.shape, ...mnistStats, pmnistPermutation(p)),
      }));
    }
  } else if (name === 'cifar') {
    validation = opts.validation ?? 0.1;
    const { missing: absent } = availableDatasets(dirs);
    const need = absent.filter((d) => d.name === 'cifar10' || d.name === 'cifar100');
    if (need.length) {
      throw new DataFileError(
        dirs.join(', '),
        `the cifar experiment needs ${need.map((d) => d.name).join(' and ')}, not found there`,
        'Fetch them with `hat data get cifar10` / `hat data get cifar100`, or point --data-dir at them.',
      );
    }
    const c10 = datasetByName('cifar10');
    const c100 = datasetByName('cifar100');
    specs = order.map((id) =>
      id < 5
        ? imageTask(
            c10,
            dirs,
            `CIFAR10 ${2 * id}-${2 * id + 1}`,
            (l) => l === 2 * id || l === 2 * id + 1,
            (l) => l % 2,
            2,
          )
        : imageTask(
            c100,
            dirs,
            `CIFAR100 ${20 * (id - 5)}-${20 * (id - 5) + 19}`,
            (l) => Math.floor(l / 20) === id - 5,
            (l) => l % 20,
            20,
            c10,
          ),
    );
  } else {
    validation = opts.validation ?? 0.15;
    const { present } = availableDatasets(dirs);
    const ids = new Set(present.map((d) => d.id));
    missing = DATASETS.filter((d) => !ids.has(d.id)).map((d) => d.name);
    if (opts.datasets) {
      const wanted = opts.datasets.map((n) => datasetByName(n).id);
      const absent = wanted.filter((id) => !ids.has(id)).map((id) => DATASETS[id].name);
      if (absent.length)
        throw new DataFileError(
          dirs.join(', '),
          `--datasets asks for ${absent.join(', ')}, not found there`,
          'Fetch them with `hat data get NAME`, or point --data-dir at them.',
        );
      order = order.filter((id) => wanted.includes(id));
    }
    order = order.filter((id) => ids.has(id));
    // a mixture of one dataset is no continual learning: only when asked for (--datasets X, --tasks 1)
    if (order.length < 2 && !opts.datasets && opts.tasks === undefined)
      throw new DataFileError(
        dirs.join(', '),
        `the mixture experiment needs at least 2 datasets; ${order.length ? `only ${DATASETS[order[0]].name} is` : 'none is'} available (missing: ${missing.join(', ')})`,
        'Fetch some with `hat data get NAME`, point --data-dir at them, or ask for one task explicitly (--datasets NAME or --tasks 1).',
      );
    specs = order.map((id) => imageTask(DATASETS[id], dirs));
  }
  if (opts.tasks !== undefined) {
    if (opts.tasks < 1) throw new Error('--tasks must be at least 1');
    if (opts.tasks > specs.length)
      throw new DataFileError(
        name === 'mixture' ? dirs.join(', ') : name,
        `--tasks ${opts.tasks} asks for more tasks than the ${name} experiment has (${specs.length}${name === 'mixture' ? `: the datasets there; missing ${missing.join(', ')}` : ''})`,
        name === 'mixture'
          ? 'Fetch more datasets (`hat data get NAME`), or ask for fewer tasks.'
          : 'Ask for fewer tasks.',
      );
    specs = specs.slice(0, opts.tasks);
    order = order.slice(0, opts.tasks);
  }
  if (typeof validation === 'number' && !(validation > 0 && validation < 1))
    throw new Error(`validation fraction must be in (0, 1), got ${validation}`);
  const tasks = specs.map((s, i) => makeTask(i, s, validation, rng, opts));
  return { name, network, inputShape: tasks[0]?.train.preprocess.outShape ?? [], tasks, order, missing, validation };
}

/** A mini-batch: inputs, task-local labels, and the task of each sample. */
export interface Batch {
  x: tf.Tensor;
  y: tf.Tensor1D;
  /** Task of every sample. */
  tasks: Int32Array;
  /** The task when all samples share one (the usual case), else -1. */
  task: number;
  size: number;
}

/**
 * The samples of one or several tasks' splits, addressed by one index (joint training draws batches from
 * the union of tasks).
 */
export class SampleSource {
  readonly n: number;
  private readonly offsets: number[] = [];
  constructor(readonly parts: { split: Split; task: number }[]) {
    let n = 0;
    for (const p of parts) {
      this.offsets.push(n);
      n += p.split.rows.length;
    }
    this.n = n;
    const sizes = new Set(parts.map((p) => p.split.preprocess.size));
    if (sizes.size > 1) throw new Error('SampleSource: the splits have different input sizes');
  }

  static of(split: Split, task: number): SampleSource {
    return new SampleSource([{ split, task }]);
  }

  /** Batch of the samples at positions order[start..end); the caller owns (and disposes) its tensors. */
  private batch(order: ArrayLike<number>, start: number, end: number): Batch {
    const size = end - start;
    // one split: gathered on the device from its resident inputs (./resident.ts) when they fit the budget
    const inputs = this.parts.length === 1 ? residentInputs(this.parts[0].split) : null;
    if (inputs) {
      const { split, task } = this.parts[0];
      const at = new Int32Array(size); // positions in the split
      let consecutive = true;
      for (let b = 0; b < size; b++) {
        at[b] = order[start + b];
        consecutive &&= at[b] === at[0] + b;
      }
      const x = consecutive
        ? tf.slice(inputs, at[0], size)
        : tf.tidy(() => tf.gather(inputs, tf.tensor1d(at, 'int32')));
      const y = tf.tensor1d(
        at.map((i) => split.labels[i]),
        'int32',
      );
      return { x, y, tasks: new Int32Array(size).fill(task), task, size };
    }
    const pre = this.parts[0].split.preprocess;
    const x = new Float32Array(size * pre.size);
    const y = new Int32Array(size);
    const tasks = new Int32Array(size);
    let task = this.parts.length === 1 ? this.parts[0].task : -2;
    for (let b = 0; b < size; b++) {
      let i = order[start + b];
      let p = 0;
      while (p + 1 < this.parts.length && i >= this.offsets[p + 1]) p++;
      i -= this.offsets[p];
      const { split, task: t } = this.parts[p];
      split.preprocess.write(split.images, split.rows[i], x, b * pre.size);
      y[b] = split.labels[i];
      tasks[b] = t;
      if (task === -2) task = t;
      else if (task !== t) task = -1;
    }
    return { x: tf.tensor(x, [size, ...pre.outShape]), y: tf.tensor1d(y, 'int32'), tasks, task, size };
  }

  /**
   * Calls `fn` on consecutive mini-batches of the samples at positions `order` (default: all, in stored
   * order), the last one smaller when the size does not divide. The source owns the batch tensors: they are
   * disposed when `fn` returns, so `fn` keeps only what it computes (in a tf.tidy or disposed by itself).
   */
  forEachBatch(
    batchSize: number,
    fn: (batch: Batch, start: number) => void,
    order: ArrayLike<number> = this.storedOrder(),
  ): void {
    for (let start = 0; start < order.length; start += batchSize) {
      const batch = this.batch(order, start, Math.min(order.length, start + batchSize));
      try {
        fn(batch, start);
      } finally {
        tf.dispose([batch.x, batch.y]);
      }
    }
  }

  private storedOrder(): Int32Array {
    return (this.inOrder ??= Int32Array.from({ length: this.n }, (_, i) => i));
  }
  private inOrder?: Int32Array;
}

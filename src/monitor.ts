/**
 * Monitoring runs of HAT (spec §9, the reference's "hat-test"): the logs behind the capacity figure (paper
 * Fig. 5), the weight-reuse matrix (Fig. 6) and the compression figure (Fig. 7).
 *
 * - `runCapacityMonitor`: HAT on a task sequence; after every epoch of every task it records the task's
 *   gates sigma(smax e_t), the instantaneous cumulative attention max(A_previous, gates) and the resulting
 *   weight usage per layer (spec §8.5), plus train/validation loss, validation accuracy and regulariser.
 * - `runCompression`: single-task HAT with embeddings U(0, 2) (all units start open), c = 1.5 by default;
 *   after every epoch the fraction of weights kept by the binarised gates and the validation accuracy with
 *   near-step gates (s = 10000 smax), plus a plain-SGD reference accuracy on the same task (spec §8.7).
 *
 * Both are built from the library's public pieces (experiment, network, Hat, trainTask), write one JSON log
 * per run, and are what `hat monitor` (`npm run monitor`) and the notebooks call.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, BackendInfo } from './backend';
import { Evaluation, evaluateLogits } from './approaches/approach';
import { APPROACHES, networkConfigFor } from './approaches/index';
import { Hat, HAT_DEFAULTS } from './approaches/hat';
import { Sgd } from './approaches/sgd';
import { ExperimentName, SampleSource, Task, buildExperiment } from './data/experiments';
import { writeFileAtomic } from './io';
import { LayerUsage, cumulativeMax, totalUsage, weightUsage } from './metrics';
import { EmbeddingInit, LayerSpec, Network } from './nets/network';
import { createProgress, ProgressReporter } from './progress';
import { testLearntTasks } from './run';
import { TRAIN_DEFAULTS, TrainOptions, trainTask } from './train';

export const MONITOR_FORMAT = 'hat-ts/monitor@1';
export const COMPRESSION_FORMAT = 'hat-ts/compression@1';

/** Gate values quantised to bytes (round(255 g)) and base64-encoded: compact per-epoch gate logs. */
export function encodeGates(g: ArrayLike<number>): string {
  const bytes = new Uint8Array(g.length);
  for (let i = 0; i < g.length; i++) bytes[i] = Math.round(255 * Math.min(1, Math.max(0, g[i])));
  return Buffer.from(bytes).toString('base64');
}

export function decodeGates(s: string): number[] {
  return Array.from(Buffer.from(s, 'base64'), (b) => b / 255);
}

export interface MonitorEpoch {
  /** Task index (0-based) and epoch within the task (0 = before training, spec's "-1"). */
  task: number;
  epoch: number;
  lr: number;
  trainLoss: number;
  validLoss: number;
  validAccuracy: number;
  /** Capacity regulariser R at s = smax. */
  regulariser: number;
  /** Per layer: units of the task whose gate is > 0.5. */
  activeUnits: number[];
  /** Weight usage of the instantaneous cumulative attention max(A_before, gates_t), per layer. */
  usage: LayerUsage[];
  /** Network-wide fraction of gated-layer weights in use (the curve of Fig. 5). */
  totalUsage: number;
  /** The task's gates sigma(smax e_t) per layer, encoded with encodeGates. */
  gates: string[];
}

export interface MonitorLog {
  format: typeof MONITOR_FORMAT;
  experiment: string;
  seed: number;
  smax: number;
  c: number;
  embeddingInit: EmbeddingInit;
  backend: string;
  protocol: { tasks: number; maxTrain?: number; maxTest?: number; hidden?: number[]; train: TrainOptions };
  tasks: string[];
  layers: LayerSpec[];
  epochs: MonitorEpoch[];
  /** Per task and layer: cumulative attention before the task (zeros for the first task), encoded. */
  cumulativeBefore: string[][];
  /** Final gates of every task at s = smax (numbers, for the reuse matrix). */
  taskGates: number[][][];
  /** Accuracy and loss on every test set after the last task. */
  accuracy: number[][];
  testLoss: number[][];
  seconds: number;
}

export interface MonitorOptions {
  experiment: ExperimentName;
  seed?: number;
  tasks?: number;
  maxTrain?: number;
  maxTest?: number;
  hidden?: number[];
  train?: Partial<TrainOptions>;
  smax?: number;
  c?: number;
  embeddingInit?: EmbeddingInit;
  dataDir?: string;
  backend?: string;
  /** Where to write the log; nothing is written when undefined. */
  file?: string;
  progress?: ProgressReporter;
}

/** Accuracy and mean loss of a task's head with its gates at scale s (e.g. 10000 smax: practically steps). */
export function evaluateWithGateScale(net: Network, source: SampleSource, task: number, s: number): Evaluation {
  return evaluateLogits(source, (x) => net.logits(net.features(x, { training: false, task, s }).h, task));
}

/** Task t's gates at s = smax (as arrays) and the capacity regulariser they give, from one evaluation of the gates. */
function gateState(hat: Hat, t: number): { gates: number[][]; regulariser: number } {
  const gates = hat.gates(t);
  const r = hat.regulariser(gates);
  const state = { gates: gates.map((g) => Array.from(g.dataSync())), regulariser: r.dataSync()[0] };
  tf.dispose([...gates, r]);
  return state;
}

function hatNetwork(tasks: Task[], kind: 'mlp' | 'alexnet', inputShape: number[], seed: number, hidden: number[] | undefined, embeddingInit: EmbeddingInit): Network {
  const config = networkConfigFor(APPROACHES.hat, kind, inputShape, tasks.map((t) => t.classes), { hidden });
  return new Network({ ...config, embeddingInit }, seed);
}

/** HAT on a task sequence with per-epoch mask monitoring (paper Figs. 5 and 6). */
export async function runCapacityMonitor(opts: MonitorOptions): Promise<MonitorLog> {
  const backend: BackendInfo = await initBackend(opts.backend);
  const seed = opts.seed ?? 0;
  const train: TrainOptions = { ...TRAIN_DEFAULTS, ...opts.train };
  const progress = opts.progress ?? createProgress('quiet');
  const experiment = buildExperiment(opts.experiment, { seed, dataDir: opts.dataDir, tasks: opts.tasks, maxTrain: opts.maxTrain, maxTest: opts.maxTest });
  const { tasks } = experiment;
  if (!tasks.length) throw new Error(`experiment ${opts.experiment} has no tasks (no datasets found)`);
  const embeddingInit = opts.embeddingInit ?? 'normal';
  const net = hatNetwork(tasks, experiment.network, experiment.inputShape, seed, opts.hidden, embeddingInit);
  const hat = new Hat(net, { smax: opts.smax ?? HAT_DEFAULTS.smax, c: opts.c ?? HAT_DEFAULTS.c });
  const layers = net.config.layers;
  const started = performance.now();
  const log: MonitorLog = {
    format: MONITOR_FORMAT, experiment: opts.experiment, seed, smax: hat.smax, c: hat.c, embeddingInit, backend: backend.name,
    protocol: { tasks: tasks.length, maxTrain: opts.maxTrain, maxTest: opts.maxTest, hidden: opts.hidden, train },
    tasks: tasks.map((t) => t.name), layers, epochs: [], cumulativeBefore: [], taskGates: [], accuracy: [], testLoss: [], seconds: 0,
  };
  const tests = tasks.map((task, u) => SampleSource.of(task.test, u));
  try {
    for (let t = 0; t < tasks.length; t++) {
      const before = hat.cumulative ? hat.cumulative.map((a) => Array.from(a.dataSync())) : layers.map((l) => new Array<number>(l.units).fill(0));
      log.cumulativeBefore.push(before.map(encodeGates));
      const valid = SampleSource.of(tasks[t].valid, t);
      const record = (epoch: number, lr: number, trainLoss: number, validLoss: number) => {
        const { gates, regulariser } = gateState(hat, t);
        const usage = weightUsage(layers, t === 0 ? gates : cumulativeMax([before, gates]));
        log.epochs.push({
          task: t, epoch, lr, trainLoss, validLoss, validAccuracy: hat.evaluate(valid, t).accuracy, regulariser,
          activeUnits: gates.map((g) => g.filter((v) => v > 0.5).length), usage, totalUsage: totalUsage(usage), gates: gates.map(encodeGates),
        });
      };
      record(0, train.lr, NaN, hat.validationLoss(valid));
      trainTask(hat, t, tasks, train, seed, progress, (_task, e) => record(e.epoch, e.lr, e.trainLoss, e.validLoss));
      log.taskGates.push(hat.taskGates[t]);
      const row = testLearntTasks(hat, tests, t);
      log.accuracy.push(row.accuracy);
      log.testLoss.push(row.loss);
      log.seconds = (performance.now() - started) / 1000;
      if (opts.file) writeFileAtomic(opts.file, JSON.stringify(log));
    }
  } finally {
    hat.dispose();
  }
  return log;
}

export interface CompressionEpoch {
  epoch: number;
  /** Percentage of gated-layer weights kept by the binarised gates. */
  compression: number;
  /** Validation accuracy with near-step gates (s = stepScale * smax). */
  validAccuracy: number;
  validLoss: number;
  regulariser: number;
  activeUnits: number[];
}

export interface CompressionLog {
  format: typeof COMPRESSION_FORMAT;
  dataset: string;
  experiment: string;
  seed: number;
  smax: number;
  c: number;
  stepScale: number;
  backend: string;
  protocol: { maxTrain?: number; maxTest?: number; hidden?: number[]; train: TrainOptions };
  layers: LayerSpec[];
  epochs: CompressionEpoch[];
  /** Plain SGD on the same task and network trunk without gates: best validation accuracy (uncompressed reference). */
  sgdValidAccuracy?: number;
  /** After training (best epoch restored): test accuracy with step gates and the final compression. */
  final: { compression: number; validAccuracy: number; testAccuracy: number; usage: LayerUsage[] };
  seconds: number;
}

export interface CompressionOptions {
  /** Experiment whose tasks contain the dataset (default mixture). */
  experiment?: ExperimentName;
  /** Task name in that experiment (e.g. 'MNIST'), or its position in the seed's order. */
  task: string | number;
  seed?: number;
  maxTrain?: number;
  maxTest?: number;
  hidden?: number[];
  train?: Partial<TrainOptions>;
  smax?: number;
  /** Compressibility (default 1.5, spec §8.7). */
  c?: number;
  /** Evaluation gate scale as a multiple of smax (default 10000: practically a step function). */
  stepScale?: number;
  /** Also train plain SGD on the task for the uncompressed reference (default true). */
  sgdReference?: boolean;
  dataDir?: string;
  backend?: string;
  file?: string;
  progress?: ProgressReporter;
}

/** Single-task HAT with U(0,2) embeddings: compression vs validation accuracy per epoch (paper Fig. 7). */
export async function runCompression(opts: CompressionOptions): Promise<CompressionLog> {
  const backend = await initBackend(opts.backend);
  const seed = opts.seed ?? 0;
  const name = opts.experiment ?? 'mixture';
  const train: TrainOptions = { ...TRAIN_DEFAULTS, ...opts.train };
  const progress = opts.progress ?? createProgress('quiet');
  const experiment = buildExperiment(name, { seed, dataDir: opts.dataDir, maxTrain: opts.maxTrain, maxTest: opts.maxTest });
  const found = typeof opts.task === 'number' ? experiment.tasks[opts.task] : experiment.tasks.find((t) => t.name.toLowerCase() === opts.task.toString().toLowerCase());
  if (!found) throw new Error(`no task '${opts.task}' in ${name} (available: ${experiment.tasks.map((t) => t.name).join(', ') || 'none'}; missing: ${experiment.missing.join(', ') || 'none'})`);
  const task: Task = { ...found, index: 0 };
  const tasks = [task];
  const smax = opts.smax ?? HAT_DEFAULTS.smax;
  const stepScale = opts.stepScale ?? 10000;
  const net = hatNetwork(tasks, experiment.network, experiment.inputShape, seed, opts.hidden, 'uniform');
  const hat = new Hat(net, { smax, c: opts.c ?? 1.5 });
  const layers = net.config.layers;
  const valid = SampleSource.of(task.valid, 0);
  const started = performance.now();
  const epochs: CompressionEpoch[] = [];
  const record = (epoch: number, validLoss: number) => {
    const { gates, regulariser } = gateState(hat, 0);
    epochs.push({
      epoch, compression: 100 * totalUsage(weightUsage(layers, gates)), validAccuracy: evaluateWithGateScale(net, valid, 0, stepScale * smax).accuracy,
      validLoss, regulariser, activeUnits: gates.map((g) => g.filter((v) => v > 0.5).length),
    });
  };
  let final: CompressionLog['final'];
  try {
    record(0, hat.validationLoss(valid));
    trainTask(hat, 0, tasks, train, seed, progress, (_t, e) => record(e.epoch, e.validLoss));
    const usage = weightUsage(layers, hat.taskGates[0]);
    final = {
      compression: 100 * totalUsage(usage), validAccuracy: evaluateWithGateScale(net, valid, 0, stepScale * smax).accuracy,
      testAccuracy: evaluateWithGateScale(net, SampleSource.of(task.test, 0), 0, stepScale * smax).accuracy, usage,
    };
  } finally {
    hat.dispose();
  }
  let sgdValidAccuracy: number | undefined;
  if (opts.sgdReference ?? true) {
    const config = networkConfigFor(APPROACHES.hat, experiment.network, experiment.inputShape, [task.classes], { hidden: opts.hidden });
    const sgd = new Sgd(new Network({ ...config, hat: false }, seed));
    try {
      trainTask(sgd, 0, tasks, train, seed, progress);
      sgdValidAccuracy = sgd.evaluate(valid, 0).accuracy;
    } finally {
      sgd.dispose();
    }
  }
  const log: CompressionLog = {
    format: COMPRESSION_FORMAT, dataset: task.name, experiment: name, seed, smax, c: hat.c, stepScale, backend: backend.name,
    protocol: { maxTrain: opts.maxTrain, maxTest: opts.maxTest, hidden: opts.hidden, train }, layers, epochs, sgdValidAccuracy, final,
    seconds: (performance.now() - started) / 1000,
  };
  if (opts.file) writeFileAtomic(opts.file, JSON.stringify(log));
  return log;
}

/** Default file names: RES/monitor/EXPERIMENT_hat-monitor_SEED.json and RES/compression/DATASET_SEED.json. */
export function monitorFile(resDir: string, experiment: string, seed: number): string {
  return path.join(resDir, 'monitor', `${experiment}_hat-monitor_${seed}.json`);
}
export function compressionFile(resDir: string, dataset: string, seed: number): string {
  return path.join(resDir, 'compression', `${dataset.replace(/[^A-Za-z0-9_-]+/g, '-')}_hat-compression_${seed}.json`);
}

/**
 * One run = (experiment, approach, seed): builds the task sequence and the network, learns the tasks in
 * order, tests every task seen so far after each one, and writes the result file (and a checkpoint) after
 * every task, so an interrupted run resumes where it stopped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BackendInfo, initBackend } from './backend';
import { Approach, Hyper } from './approaches/approach';
import { Hat } from './approaches/hat';
import { approachDef, networkConfigFor, parseParameters } from './approaches/index';
import { loadCheckpoint, removeCheckpoint, saveCheckpoint } from './checkpoint';
import { Experiment, ExperimentName, SampleSource, buildExperiment } from './data/experiments';
import { cumulativeMax, forgettingRatios, meanUpTo, totalUsage, weightUsage } from './metrics';
import { InitScheme } from './nets/network';
import { ProgressReporter, createProgress } from './progress';
import { readManifest } from './data/manifest';
import { CacheProvenance, Protocol, RunConfig, RunResult, environment, findReferences, hashConfig, resultBase, writeResult } from './results';
import { EpochHook, TRAIN_DEFAULTS, TrainOptions, trainTask } from './train';

export interface RunOptions {
  experiment: ExperimentName;
  approach: string;
  seed: number;
  /** "name=value" approach parameters. */
  parameters?: string[];
  train?: Partial<TrainOptions>;
  tasks?: number;
  maxTrain?: number;
  maxTest?: number;
  validation?: number;
  hidden?: number[];
  init?: InitScheme;
  dataDir?: string;
  resDir?: string;
  backend?: string;
  /** Name in file names and tables; default: approach id plus non-default parameters. */
  tag?: string;
  /** Continue from a checkpoint of the same config when there is one (default true). */
  resume?: boolean;
  progress?: ProgressReporter;
  onEpoch?: EpochHook;
}

function defaultTag(approach: string, hyper: Hyper): string {
  const def = approachDef(approach);
  const changed = Object.entries(hyper).filter(([k, v]) => def.parameters[k] && def.parameters[k].default !== v);
  return [approach, ...changed.map(([k, v]) => `${k}${v}`)].join('-');
}

export interface RunOutcome {
  result: RunResult;
  file: string;
  experiment: Experiment;
  approach: Approach;
  backend: BackendInfo;
}

/** Runs (or resumes) an experiment; the approach is returned undisposed for inspection (caller disposes). */
export async function runExperiment(opts: RunOptions): Promise<RunOutcome> {
  const backend = await initBackend(opts.backend);
  const def = approachDef(opts.approach);
  const hyper = parseParameters(def.id, opts.parameters ?? []);
  const train: TrainOptions = { ...TRAIN_DEFAULTS, ...opts.train };
  const experiment = buildExperiment(opts.experiment, { seed: opts.seed, dataDir: opts.dataDir, tasks: opts.tasks, validation: opts.validation, maxTrain: opts.maxTrain, maxTest: opts.maxTest });
  const T = experiment.tasks.length;
  if (T === 0) throw new Error(`experiment ${opts.experiment} has no tasks (no datasets found)`);
  const protocol: Protocol = { experiment: opts.experiment, seed: opts.seed, tasks: T, train, maxTrain: opts.maxTrain, maxTest: opts.maxTest, validation: experiment.validation };
  const config: RunConfig = {
    approach: def.id, tag: opts.tag ?? defaultTag(def.id, hyper), parameters: hyper,
    network: { hidden: opts.hidden, init: opts.init ?? 'pytorch' }, protocol, backendChoice: backend.choice, dataDir: opts.dataDir,
  };
  const configHash = hashConfig(config);
  const base = resultBase(opts.resDir ?? 'res', protocol, config.tag);
  const progress = opts.progress ?? createProgress('auto');

  const heads = experiment.tasks.map((t) => t.classes);
  const networkConfig = def.network === 'none' ? null : networkConfigFor(def, experiment.network, experiment.inputShape, heads, { hidden: opts.hidden, init: opts.init });
  const approach = def.create({ config: networkConfig, hyper, seed: opts.seed });

  const result: RunResult = {
    format: 'hat-ts/run@1', status: 'running', config, configHash, environment: environment(backend),
    data: {
      order: experiment.order, missing: experiment.missing,
      tasks: experiment.tasks.map((t) => ({ name: t.name, classes: t.classes, train: t.train.rows.length, valid: t.valid === t.train ? 'train' : t.valid.rows.length, test: t.test.rows.length, source: t.source, cache: cacheProvenance(t.source) })),
    },
    network: approach.model ? approach.model.describe() : null,
    timings: { started: new Date().toISOString(), seconds: 0, perTask: [] },
    accuracy: [], loss: [], epochs: [], averageAccuracy: [], summary: {},
  };

  let first = 0;
  if (opts.resume ?? true) {
    const ckpt = loadCheckpoint(`${base}.ckpt`, configHash);
    if (ckpt) {
      const previous = ckpt.manifest.json as { result: RunResult; approach: unknown };
      approach.loadCheckpointState({ tensors: ckpt.tensors, json: previous.approach });
      tf.dispose(Object.values(ckpt.tensors));
      Object.assign(result, { accuracy: previous.result.accuracy, loss: previous.result.loss, epochs: previous.result.epochs, timings: previous.result.timings });
      first = ckpt.manifest.tasksDone;
      progress.log(`resuming ${base} after task ${first}/${T}`);
    }
  }
  if (first === 0) progress.log(`${opts.experiment} / ${config.tag} / seed ${opts.seed}: ${T} tasks, backend ${backend.name} (${backend.package})${experiment.missing.length ? `; missing datasets: ${experiment.missing.join(', ')}` : ''}`);

  const tests = experiment.tasks.map((t, u) => SampleSource.of(t.test, u));
  for (let t = first; t < T; t++) {
    const log = trainTask(approach, t, experiment.tasks, train, opts.seed, progress, opts.onEpoch);
    const { accuracy: accRow, loss: lossRow } = testLearntTasks(approach, tests, t);
    result.accuracy[t] = accRow;
    result.loss[t] = lossRow;
    result.epochs[t] = log;
    result.timings.perTask[t] = log.trainSeconds;
    result.timings.seconds = result.timings.perTask.reduce((a, b) => a + b, 0);
    result.averageAccuracy = meanUpTo(result.accuracy);
    progress.endTask({ task: t, tasks: T, taskName: experiment.tasks[t].name, epochs: log.epochs.length, seconds: log.trainSeconds, accuracies: accRow.slice(0, t + 1) });
    writeResult(base, result);
    if (t < T - 1) {
      const state = approach.checkpointState();
      saveCheckpoint(`${base}.ckpt`, t + 1, configHash, state.tensors, { result, approach: state.json });
    }
  }

  if (approach instanceof Hat) {
    const net = approach.net;
    const perTask = approach.taskGates.map((g) => weightUsage(net.config.layers, g));
    const cumulative = approach.taskGates.map((_, t) => weightUsage(net.config.layers, cumulativeMax(approach.taskGates.slice(0, t + 1))));
    result.masks = { perTask, cumulative, totalCumulative: cumulative.map(totalUsage) };
  }
  result.summary = approach.summary();
  attachForgetting(result, opts.resDir ?? 'res');
  result.status = 'complete';
  result.timings.finished = new Date().toISOString();
  writeResult(base, result);
  removeCheckpoint(`${base}.ckpt`);
  progress.stop();
  return { result, file: `${base}.json`, experiment, approach, backend };
}

/** Test accuracy and loss of every task learnt so far (0..t) with its own head: row t of the matrices (0 above the diagonal). */
export function testLearntTasks(approach: Approach, tests: SampleSource[], t: number): { accuracy: number[]; loss: number[] } {
  const accuracy = new Array<number>(tests.length).fill(0);
  const loss = new Array<number>(tests.length).fill(0);
  for (let u = 0; u <= t; u++) {
    const e = approach.evaluate(tests[u], u);
    accuracy[u] = e.accuracy;
    loss[u] = e.loss;
  }
  return { accuracy, loss };
}

/** Where a cached dataset came from (its manifest: source variant, inputs and their checksums, cache-file checksums). */
function cacheProvenance(folder: string): CacheProvenance | undefined {
  const m = readManifest(folder);
  if (!m) return undefined;
  return {
    variant: m.source.variant, how: m.source.how,
    inputs: m.source.inputs.map((i) => ({ name: i.name, url: i.url, sha256: i.sha256, verification: i.verification })),
    files: Object.fromEntries(Object.entries(m.files).map(([f, v]) => [f, v.sha256])),
  };
}

/** Adds forgetting ratios when the random and joint results of the same protocol exist. */
export function attachForgetting(result: RunResult, resDir: string): boolean {
  const refs = findReferences(resDir, result.config.protocol);
  const random = result.config.approach === 'random' ? result : refs.random?.result;
  const joint = result.config.approach === 'joint' && result.config.tag === 'joint' ? result : refs.joint?.result;
  if (!random || !joint) return false;
  const ratios = forgettingRatios(result.accuracy, random.accuracy.map((row, u) => row[u]), joint.accuracy);
  result.forgetting = { ratios, meanUpTo: meanUpTo(ratios), references: { random: refs.random?.file ?? '(this run)', joint: refs.joint?.file ?? '(this run)' } };
  return true;
}

/**
 * One run = (experiment, approach, seed): builds the task sequence and the approach, learns the tasks in
 * order, tests every task seen so far after each one, and writes the result file (and a checkpoint) after
 * every task, so an interrupted run resumes where it stopped. Everything that watches the run (progress,
 * statistics, monitoring logs) is a callback (training/callbacks.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type BackendInfo, initBackend } from '../backend/index';
import { defaultTag } from '../approaches/catalog';
import { approachDef, createApproach, parseApproachParams } from '../approaches/index';
import { type Hyper, withDefaults } from '../core/params';
import { UserError } from '../core/errors';
import { readManifest } from '../data/manifest';
import { type Experiment, type ExperimentName, SampleSource, buildExperiment } from '../data/experiments';
import { releaseResidentInputs, residentBudgetBytes } from '../data/resident';
import { meanUpTo } from '../analysis/metrics';
import type { InitScheme } from '../nets/config';
import { type Callback, CallbackList } from '../training/callbacks';
import { type Progress, type ProgressMode, createProgress } from '../training/progress';
import { type TaskResume, learnTask } from '../training/trainer';
import { faultPoint } from '../core/faults';
import { checkWritableFolder } from '../core/io';
import { loadModel, saveModel } from '../models/store';
import * as path from 'node:path';
import { TRAIN_DEFAULTS, type TrainOptions } from '../training/types';
import type { Predictor, TaskFitter, TrainerState } from '../training/types';
import { loadCheckpoint, removeCheckpoint, saveCheckpoint } from './checkpoint';
import { attachForgetting, loadResults } from './loader';
import { type MonitorName, maskUsage, monitorCallbacks } from './monitors';
import {
  type CacheProvenance,
  type Protocol,
  RESULT_FORMAT,
  type RunConfig,
  type RunResult,
  environment,
  hashConfig,
  resultBase,
  writeFailure,
  writeResult,
} from './result-file';

export interface RunOptions {
  experiment: ExperimentName;
  approach: string;
  seed: number;
  /** Approach parameters: "name=value" items, or values by name (checked against the approach's schema). */
  parameters?: string[] | Hyper;
  train?: Partial<TrainOptions>;
  tasks?: number;
  /** Mixture: only these datasets (in the seed's order). */
  datasets?: string[];
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
  /**
   * Seconds between checkpoints within a task (after the epoch that passes it; default 300); 0 = after every
   * epoch. A checkpoint is also written after every task.
   */
  checkpointEvery?: number;
  /** Progress display (a mode, or a Progress callback); default 'auto'. */
  progress?: Progress | ProgressMode;
  /** Save the trained model into this folder when the run completes (models/store.ts). */
  saveModel?: string;
  /**
   * Start from a saved model: its learnt tasks must be the experiment's first ones (by name); the run goes on
   * with the next, growing the model by a head (and HAT embedding rows) for tasks it was not built for.
   */
  fromModel?: string;
  /** Per-epoch monitoring logs written into the result file's extras (runs/monitors.ts). */
  monitor?: readonly MonitorName[];
  /** More observers of the run. */
  callbacks?: readonly Callback[];
}

export interface RunOutcome {
  result: RunResult;
  file: string;
  experiment: Experiment;
  /** The trained approach, undisposed for inspection (the caller disposes it). */
  approach: Predictor;
  backend: BackendInfo;
}

/** Runs (or resumes) an experiment. */
export async function runExperiment(opts: RunOptions): Promise<RunOutcome> {
  // what the user typed and the data are checked before the (slow) native backend loads
  const def = approachDef(opts.approach);
  residentBudgetBytes(); // a bad HAT_DATA_CACHE_MB stops here, not at the first batch
  const params = Array.isArray(opts.parameters)
    ? parseApproachParams(def.id, opts.parameters)
    : withDefaults(def.params, opts.parameters ?? {}, `approach ${def.id}`);
  const train: TrainOptions = { ...TRAIN_DEFAULTS, ...opts.train };
  const experiment = buildExperiment(opts.experiment, {
    seed: opts.seed,
    dataDir: opts.dataDir,
    tasks: opts.tasks,
    datasets: opts.datasets,
    validation: opts.validation,
    maxTrain: opts.maxTrain,
    maxTest: opts.maxTest,
  });
  const T = experiment.tasks.length;
  if (T === 0) throw new UserError(`experiment ${opts.experiment} has no tasks (no datasets found)`);
  checkWritableFolder(opts.resDir ?? 'res', 'results'); // a read-only or full folder fails now, not after a task
  const backend = await initBackend(opts.backend);
  const protocol: Protocol = {
    experiment: opts.experiment,
    datasets: opts.datasets,
    seed: opts.seed,
    tasks: T,
    train,
    maxTrain: opts.maxTrain,
    maxTest: opts.maxTest,
    validation: experiment.validation,
  };
  const start = opts.fromModel ? startFromModel(opts.fromModel, def.id, experiment) : undefined;
  const approach =
    start?.approach ??
    createApproach(def.id, {
      kind: experiment.network,
      inputShape: experiment.inputShape,
      heads: experiment.tasks.map((t) => t.classes),
      network: { hidden: opts.hidden, init: opts.init },
      params,
      seed: opts.seed,
    });
  const config: RunConfig = {
    approach: def.id,
    tag: opts.tag ?? defaultTag(def.id, approach.hyper),
    parameters: approach.hyper,
    network: { hidden: opts.hidden, init: opts.init ?? 'pytorch' },
    monitor: opts.monitor?.length ? [...opts.monitor] : undefined,
    ...(start ? { from: { model: path.resolve(opts.fromModel!), learnt: start.learnt, created: start.created } } : {}),
    protocol,
    backendChoice: backend.choice,
    dataDir: opts.dataDir,
  };
  const configHash = hashConfig(config);
  const resDir = opts.resDir ?? 'res';
  const base = resultBase(resDir, protocol, config.tag);
  const progress = typeof opts.progress === 'object' ? opts.progress : createProgress(opts.progress ?? 'auto');
  const callbacks = new CallbackList([
    progress,
    maskUsage(),
    ...monitorCallbacks(opts.monitor),
    ...(opts.callbacks ?? []),
  ]);

  const result: RunResult = {
    format: RESULT_FORMAT,
    status: 'running',
    config,
    configHash,
    environment: environment(backend),
    data: {
      order: experiment.order,
      missing: experiment.missing,
      tasks: experiment.tasks.map((t) => ({
        name: t.name,
        classes: t.classes,
        train: t.train.rows.length,
        valid: t.valid === t.train ? 'train' : t.valid.rows.length,
        test: t.test.rows.length,
        source: t.source,
        cache: cacheProvenance(t.source),
      })),
    },
    network: approach.describe(),
    timings: { started: new Date().toISOString(), seconds: 0, perTask: [] },
    accuracy: [],
    loss: [],
    epochs: [],
    averageAccuracy: [],
    summary: {},
    extras: {},
  };

  const checkpoint = (t: number, tensors: Record<string, tf.Tensor>, json: CheckpointJson) => {
    saveCheckpoint(`${base}.ckpt`, t, configHash, tensors, json);
    faultPoint('checkpoint');
  };
  let resume: TaskResume | undefined;
  let loaded: tf.Tensor[] = [];
  try {
    let first = 0;
    if (start) {
      first = start.learnt;
      result.accuracy = start.accuracy.map((row) => experiment.tasks.map((_, u) => row[u] ?? 0));
      result.loss = start.accuracy.map(() => experiment.tasks.map(() => 0));
    }
    if (opts.resume ?? true) {
      const ckpt = loadCheckpoint(`${base}.ckpt`, configHash);
      if (ckpt) {
        loaded = Object.values(ckpt.tensors);
        const previous = ckpt.manifest.json as CheckpointJson;
        const learner = { tensors: withoutPrefix(ckpt.tensors, 'trainer/', false), json: previous.approach };
        Object.assign(result, {
          accuracy: previous.result.accuracy,
          loss: previous.result.loss,
          epochs: previous.result.epochs,
          timings: previous.result.timings,
        });
        callbacks.resume(previous.result.extras);
        first = ckpt.manifest.tasksDone;
        if (previous.trainer) {
          // interrupted within task `first`: its learner and trainer go on from where they were
          const tensors = withoutPrefix(ckpt.tensors, 'trainer/', true);
          resume = {
            learner,
            trainer: {
              json: previous.trainer,
              tensors: Object.keys(tensors)
                .sort((a, b) => Number(a) - Number(b))
                .map((k) => tensors[k]),
            },
          };
        } else approach.loadState(learner);
      }
    }
    const missing = experiment.missing.length ? `; missing datasets: ${experiment.missing.join(', ')}` : '';
    const header = `${opts.experiment} / ${config.tag} / seed ${opts.seed}: ${T} tasks, backend ${backend.name} (${backend.package})${missing}`;
    callbacks.emit('onRunStart', { experiment, approach, firstTask: first, header });

    const tests = experiment.tasks.map((t, u) => SampleSource.of(t.test, u));
    const every = opts.checkpointEvery ?? 300;
    let lastCheckpoint = performance.now();
    for (let t = first; t < T; t++) {
      const onEpochEnd = (trainer: TaskFitter) => {
        if ((performance.now() - lastCheckpoint) / 1000 < every) return;
        const learner = approach.state();
        const state = trainer.state();
        const tensors = { ...learner.tensors };
        state.tensors.forEach((v, i) => (tensors[`trainer/${i}`] = v));
        checkpoint(t, tensors, {
          result: { ...result, extras: callbacks.extras() },
          approach: learner.json,
          trainer: state.json,
        });
        lastCheckpoint = performance.now();
      };
      const log = learnTask(
        approach,
        { t, tasks: experiment.tasks, opts: train, seed: opts.seed, callbacks, onEpochEnd },
        t === first ? resume : undefined,
      );
      if (t === first) tf.dispose(loaded);
      const { accuracy: accRow, loss: lossRow } = testLearntTasks(approach, tests, t);
      result.accuracy[t] = accRow;
      result.loss[t] = lossRow;
      result.epochs[t] = log;
      result.timings.perTask[t] = log.trainSeconds;
      result.timings.seconds = result.timings.perTask.reduce((a, b) => a + b, 0);
      result.averageAccuracy = meanUpTo(result.accuracy);
      callbacks.emit('onTaskEnd', { t, tasks: experiment.tasks, log, approach, accuracy: accRow, loss: lossRow });
      result.summary = approach.summary();
      result.extras = callbacks.extras();
      writeResult(base, result);
      if (t < T - 1) {
        const state = approach.state();
        checkpoint(t + 1, state.tensors, { result, approach: state.json });
        lastCheckpoint = performance.now();
      }
    }
    callbacks.emit('onRunEnd', { approach });
    result.extras = callbacks.extras();
    attachForgetting(result, loadResults(resDir));
    result.status = 'complete';
    result.timings.finished = new Date().toISOString();
    writeResult(base, result);
    removeCheckpoint(`${base}.ckpt`);
    if (opts.saveModel) {
      await saveModel(opts.saveModel, {
        approach,
        experiment,
        learnt: T,
        seed: opts.seed,
        hidden: opts.hidden,
        init: opts.init,
        config,
        accuracy: result.accuracy,
        backend,
      });
    }
  } catch (e) {
    writeFailure(base, result, e, () => callbacks.extras()); // status 'failed' and why; the last checkpoint stays
    approach.dispose();
    tf.dispose(loaded);
    throw e;
  } finally {
    callbacks.close();
    releaseResidentInputs();
  }
  return { result, file: `${base}.json`, experiment, approach, backend };
}

/**
 * A run that starts from a saved model: the model's approach (grown to the experiment's tasks), how many tasks
 * it has learnt, and its accuracy rows. Its learnt tasks must be the experiment's first ones.
 */
function startFromModel(
  dir: string,
  approachId: string,
  experiment: Experiment,
): { approach: Predictor; learnt: number; accuracy: number[][]; created: string } {
  const model = loadModel(dir);
  const { manifest, approach } = model;
  const fail = (why: string): never => {
    approach.dispose();
    throw new UserError(`--from-model ${dir}: ${why}`);
  };
  if (manifest.approach !== approachId)
    fail(`the model is a ${manifest.approach} model, not ${approachId} (-a ${manifest.approach})`);
  const learnt = manifest.tasks.slice(0, manifest.learnt).map((t) => t.name);
  const wanted = experiment.tasks.slice(0, manifest.learnt).map((t) => t.name);
  if (learnt.join('\n') !== wanted.join('\n'))
    fail(
      `its learnt tasks (${learnt.join(', ')}) are not the experiment's first ones (${wanted.join(', ')}); check -e, -s, --datasets`,
    );
  if (experiment.tasks.length <= manifest.learnt)
    fail(`it has learnt all ${manifest.learnt} tasks of this experiment; ask for more (--tasks)`);
  experiment.tasks.forEach((t, i) => {
    if (i < manifest.tasks.length) {
      if (manifest.tasks[i].classes !== t.classes)
        fail(`its head ${i + 1} has ${manifest.tasks[i].classes} classes, task ${t.name} ${t.classes}`);
    } else if (approach.addTask) approach.addTask(t.classes);
    else fail(`${approachId} models cannot grow by a task (their structure is fixed by their number of tasks)`);
  });
  // without the run's matrix, the learnt tasks' accuracy now stands for every row
  let accuracy = manifest.accuracy ?? [];
  if (accuracy.length < manifest.learnt) {
    const tests = experiment.tasks.map((t, u) => SampleSource.of(t.test, u));
    const now = testLearntTasks(approach, tests, manifest.learnt - 1).accuracy;
    accuracy = Array.from({ length: manifest.learnt }, (_, t) => now.map((a, u) => (u <= t ? a : 0)));
  }
  return { approach, learnt: manifest.learnt, accuracy, created: manifest.created };
}

/** What a checkpoint keeps besides tensors: the result so far, the approach's JSON state, and within a task the trainer's. */
interface CheckpointJson {
  result: RunResult;
  approach: unknown;
  trainer?: TrainerState['json'];
}

/** The tensors whose names start (or do not start) with a prefix, the prefix removed. */
function withoutPrefix(tensors: Record<string, tf.Tensor>, prefix: string, keep: boolean): Record<string, tf.Tensor> {
  return Object.fromEntries(
    Object.entries(tensors).flatMap(([k, v]) =>
      k.startsWith(prefix) === keep ? [[keep ? k.slice(prefix.length) : k, v]] : [],
    ),
  );
}

/** Test accuracy and loss of every task learnt so far (0..t) with its own head: row t of the matrices (0 above the diagonal). */
export function testLearntTasks(
  approach: Predictor,
  tests: SampleSource[],
  t: number,
): { accuracy: number[]; loss: number[] } {
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
    variant: m.source.variant,
    how: m.source.how,
    inputs: m.source.inputs.map((i) => ({ name: i.name, url: i.url, sha256: i.sha256, verification: i.verification })),
    files: Object.fromEntries(Object.entries(m.files).map(([f, v]) => [f, v.sha256])),
  };
}

/**
 * Saving and loading trained models (./format.ts): everything needed to use a model and to go on learning —
 * the approach's tensors (network, HAT's embeddings and cumulative attention, heads, anchors...) and JSON
 * state, the tasks with their classes and preprocessing, and the configuration it was trained with. A folder
 * is written beside its final name and renamed into place, so a reader never sees half a model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createApproach } from '../approaches/index';
import type { Experiment, Task } from '../data/experiments';
import { fromSpec, type Preprocess } from '../data/preprocess';
import { type RunConfig, environment } from '../runs/result-file';
import type { BackendInfo } from '../backend/index';
import type { Predictor } from '../training/types';
import {
  MANIFEST_FILE,
  MODEL_FORMAT,
  type ModelManifest,
  ModelFileError,
  type ModelTask,
  WEIGHTS_FILE,
  type WeightSpec,
  readManifest,
  weightBytes,
} from './format';

export interface SaveOptions {
  approach: Predictor;
  experiment: Pick<Experiment, 'network' | 'inputShape' | 'tasks'>;
  /** The tasks the approach has learnt (the first n of the experiment's, or of its grown list). */
  learnt: number;
  seed: number;
  hidden?: number[];
  init?: RunConfig['network']['init'];
  config?: RunConfig;
  accuracy?: number[][];
  backend?: BackendInfo;
}

export function modelTask(t: Task): ModelTask {
  return { name: t.name, classes: t.classes, classNames: t.classNames, preprocess: t.train.preprocess.spec };
}

/** Writes a model folder (replacing one that is there). */
export async function saveModel(dir: string, o: SaveOptions): Promise<ModelManifest> {
  const state = o.approach.state();
  const { data, specs } = await tf.io.encodeWeights(state.tensors);
  const env = o.backend ? environment(o.backend) : undefined;
  const manifest: ModelManifest = {
    format: MODEL_FORMAT,
    created: new Date().toISOString(),
    hatTs: env?.hatTs ?? 'unknown',
    gitCommit: env?.gitCommit,
    approach: o.approach.id,
    parameters: o.approach.hyper,
    build: {
      kind: o.experiment.network,
      inputShape: o.experiment.inputShape,
      hidden: o.hidden,
      init: o.init ?? 'pytorch',
      seed: o.seed,
    },
    config: o.config,
    network: o.approach.describe(),
    tasks: o.experiment.tasks.map(modelTask),
    learnt: o.learnt,
    accuracy: o.accuracy?.slice(0, o.learnt),
    state: state.json,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs as WeightSpec[] }],
  };
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  const tmp = `${path.resolve(dir)}.${process.pid}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    fs.mkdirSync(tmp);
    fs.writeFileSync(path.join(tmp, WEIGHTS_FILE), new Uint8Array(data));
    fs.writeFileSync(path.join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 1));
    const old = `${path.resolve(dir)}.${process.pid}.old`;
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    const err = e as NodeJS.ErrnoException;
    throw new ModelFileError(`cannot write the model to ${dir}: ${err.code ?? err.message}`);
  }
  return manifest;
}

export interface LoadedModel {
  dir: string;
  manifest: ModelManifest;
  /** The approach, in the state it was saved in (the caller disposes it). */
  approach: Predictor;
  /** Each task's preprocessing, made again from its description. */
  preprocess: Preprocess[];
}

/** Loads a model folder: the approach rebuilt with its configuration, its state restored. */
export function loadModel(dir: string): LoadedModel {
  const manifest = readManifest(dir);
  const bin = path.join(dir, WEIGHTS_FILE);
  if (!fs.existsSync(bin))
    throw new ModelFileError(`${dir} has no ${WEIGHTS_FILE}: the model is incomplete (save it again)`);
  const buf = fs.readFileSync(bin);
  const specs = manifest.weightsManifest[0].weights;
  if (buf.length !== weightBytes(specs))
    throw new ModelFileError(
      `${bin} has ${buf.length} bytes, its manifest says ${weightBytes(specs)}: the model is damaged (save it again)`,
    );
  const { build } = manifest;
  const damaged = (what: string, e: unknown) =>
    new ModelFileError(
      `${dir}: ${what} (${(e as Error).message.split('\n')[0]}); the model is damaged (save it again)`,
    );
  let preprocess: Preprocess[];
  try {
    preprocess = manifest.tasks.map((t) => fromSpec(t.preprocess));
  } catch (e) {
    throw damaged("a task's preprocessing cannot be made again", e);
  }
  let approach: Predictor;
  try {
    approach = createApproach(manifest.approach, {
      kind: build.kind,
      inputShape: build.inputShape,
      heads: manifest.tasks.map((t) => t.classes),
      network: { hidden: build.hidden, init: build.init },
      params: manifest.parameters,
      seed: build.seed,
    });
  } catch (e) {
    throw damaged(`the ${manifest.approach} network it describes cannot be built`, e);
  }
  const tensors = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), specs);
  try {
    approach.loadState({ tensors, json: manifest.state });
  } catch (e) {
    approach.dispose();
    throw new ModelFileError(
      `${dir}: its weights do not fit the ${manifest.approach} network it describes (${(e as Error).message})`,
    );
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return { dir, manifest, approach, preprocess };
}

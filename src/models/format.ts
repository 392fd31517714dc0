/**
 * A saved model (no TensorFlow here): a folder with `model.json`, this versioned manifest (what was trained, on
 * which tasks, with which preprocessing and configuration, and the approach's own state), and `weights.bin`,
 * the tensors in TensorFlow.js's weights format (the manifest's `weightsManifest`, as tf.io writes it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../core/errors';
import type { Hyper } from '../core/params';
import type { PreprocessSpec } from '../data/preprocess';
import type { ModelDescription, NetworkKind } from '../nets/config';
import type { RunConfig } from '../runs/result-file';

export const MODEL_FORMAT = 'hat-ts/model@1';
export const MANIFEST_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

export class ModelFileError extends UserError {
  override name = 'ModelFileError';
}

/** One task the model has a head for. */
export interface ModelTask {
  name: string;
  classes: number;
  classNames: string[];
  /** How the task's images become the network's input (data/preprocess.ts). */
  preprocess: PreprocessSpec;
}

/** A weight of weights.bin: TensorFlow.js's WeightsManifestEntry. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
}

export interface ModelManifest {
  format: typeof MODEL_FORMAT;
  created: string;
  hatTs: string;
  gitCommit?: string;
  approach: string;
  parameters: Hyper;
  /** How to build the approach again: its network kind, input shape, widths and initialisation, seed. */
  build: {
    kind: NetworkKind;
    inputShape: number[];
    hidden?: number[];
    init: RunConfig['network']['init'];
    seed: number;
  };
  /** The run it came from (absent for a model saved by a script). */
  config?: RunConfig;
  /** The trained model as result files describe it: parameter count and trunk layers. */
  network: ModelDescription | null;
  /** Every task the model has a head for; the first `learnt` have been learnt. */
  tasks: ModelTask[];
  learnt: number;
  /** The run's accuracy matrix for the learnt tasks (test accuracy of task u after task t). */
  accuracy?: number[][];
  /** The approach's own state that is not tensors (HAT's task gates, PathNet's paths...). */
  state: unknown;
  /** TensorFlow.js weights manifest: one group, in weights.bin. */
  weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
}

/** Reads and checks a model folder's manifest: one clear message naming the folder when it is not one of ours. */
export function readManifest(dir: string): ModelManifest {
  const file = path.join(dir, MANIFEST_FILE);
  if (!fs.existsSync(dir)) throw new ModelFileError(`${dir}: no such model folder`);
  if (!fs.existsSync(file))
    throw new ModelFileError(
      `${dir} is not a hat-ts model folder (no ${MANIFEST_FILE}); save one with \`hat run ... --save-model DIR\``,
    );
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelFileError(`${file} is not readable JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  const m = (json ?? {}) as Partial<Omit<ModelManifest, 'format'>> & { format?: unknown };
  const format = m.format;
  if (format !== MODEL_FORMAT) {
    if (typeof format === 'string' && format.startsWith('hat-ts/model@'))
      throw new ModelFileError(
        `${dir} was saved by another hat-ts version (format ${format}; this version reads ${MODEL_FORMAT}): load it with that version, or save it again`,
      );
    throw new ModelFileError(
      `${dir}/${MANIFEST_FILE} is not a hat-ts model manifest (format ${JSON.stringify(format)})`,
    );
  }
  const bad = (what: string) => new ModelFileError(`${file}: ${what}; the manifest is damaged (save the model again)`);
  if (typeof m.approach !== 'string') throw bad('no approach');
  if (!Array.isArray(m.tasks) || m.tasks.length === 0) throw bad('no tasks');
  if (!(Number.isInteger(m.learnt) && m.learnt! >= 0 && m.learnt! <= m.tasks.length))
    throw bad(`learnt ${String(m.learnt)} is not a number of its ${m.tasks.length} tasks`);
  if (!m.build || !Array.isArray(m.build.inputShape)) throw bad('no build description');
  if (
    !Array.isArray(m.weightsManifest) ||
    m.weightsManifest.length !== 1 ||
    !Array.isArray(m.weightsManifest[0].weights)
  )
    throw bad('no weights manifest');
  for (const [i, t] of m.tasks.entries()) {
    if (typeof t?.name !== 'string' || !(t.classes > 0) || !t.preprocess) throw bad(`task ${i + 1} is incomplete`);
  }
  return m as ModelManifest;
}

/** The number of bytes weights.bin must have. */
export function weightBytes(specs: readonly WeightSpec[]): number {
  return specs.reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
}

/** Task `task` (1-based, as users count) of a model, or a clear error listing its tasks. */
export function taskIndex(m: ModelManifest, task: number | string): number {
  const byName =
    typeof task === 'string' && !/^\d+$/.test(task)
      ? m.tasks.findIndex((t) => t.name.toLowerCase() === task.toLowerCase())
      : Number(task) - 1;
  if (!(byName >= 0 && byName < m.learnt)) {
    const names = m.tasks.slice(0, m.learnt).map((t, i) => `${i + 1} (${t.name})`);
    throw new ModelFileError(
      `the model has no learnt task ${String(task)}; its tasks: ${names.join(', ') || 'none learnt yet'}`,
    );
  }
  return byName;
}

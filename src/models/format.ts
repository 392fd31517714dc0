/**
 * A saved model (no TensorFlow here): a folder with `model.json`, this versioned manifest (what was trained, on
 * which tasks, with which preprocessing and configuration, and the approach's own state), and `weights.bin`,
 * the tensors in TensorFlow.js's weights format (the manifest's `weightsManifest`, as tf.io writes it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { UserError } from '../core/errors';
import type { Hyper } from '../core/params';
import type { PreprocessSpec } from '../data/preprocess';
import { INIT_SCHEMES, type ModelDescription, type NetworkKind } from '../nets/config';
import type { RunConfig } from '../runs/result-file';

// @2: HAT's embeddings are one tensor per task (`LAYER/embedding/T`), no longer one [tasks, units] table
export const MODEL_FORMAT = 'hat-ts/model@2';
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

const count = z.number().int().min(0);
const positive = z.number().int().min(1);
const finite = z.number().refine(Number.isFinite, 'not a finite number');
const shape = z.array(count).max(8);
const inShape = z.tuple([positive, positive, positive]);
const PREPROCESS_SHAPE = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('flat'),
    inShape,
    mean: finite,
    std: finite.refine((v) => v > 0, 'not positive'),
    permutation: z.array(count).optional(),
  }),
  z.object({
    kind: z.literal('image'),
    inShape,
    size: positive,
    mean: z.array(finite),
    std: z.array(finite.refine((v) => v > 0, 'not positive')),
  }),
]);
/** What loading and using a model relies on (the rest, e.g. the run's config, is free-form). */
const MANIFEST_SHAPE = z.object({
  approach: z.string(),
  parameters: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  build: z.object({
    kind: z.enum(['mlp', 'alexnet']),
    inputShape: z.array(positive).min(1).max(3),
    hidden: z.array(positive).optional(),
    init: z.enum(INIT_SCHEMES),
    seed: count,
  }),
  tasks: z
    .array(
      z.object({ name: z.string(), classes: positive, classNames: z.array(z.string()), preprocess: PREPROCESS_SHAPE }),
    )
    .min(1),
  learnt: count,
  accuracy: z.array(z.array(z.number())).optional(),
  weightsManifest: z
    .array(
      z.object({
        paths: z.array(z.string()),
        weights: z.array(z.object({ name: z.string(), shape, dtype: z.literal('float32') })),
      }),
    )
    .length(1),
});

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
  const r = MANIFEST_SHAPE.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)).join('');
    throw new ModelFileError(
      `${file}: ${where.replace(/^\./, '') || 'the manifest'}: ${issue.message}; the manifest is damaged (save the model again)`,
    );
  }
  if (m.learnt! > m.tasks!.length)
    throw new ModelFileError(
      `${file}: learnt ${m.learnt} of its ${m.tasks!.length} tasks; the manifest is damaged (save the model again)`,
    );
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

/**
 * Checkpoints after every task (and every few minutes within one): all network variables plus the approach's
 * own state (HAT's cumulative attention, ...), so an interrupted run resumes with identical results. Written
 * as a raw float32 file named by its content's hash and a JSON manifest naming it (with its size and sha256),
 * the manifest last, each atomically; the data files the manifest no longer names are removed after it is
 * written. A process killed at any moment therefore leaves the previous checkpoint whole. A state holding NaN
 * or infinite values is never written (the last good checkpoint stays), and a damaged checkpoint is one clear
 * error naming its file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../core/errors';
import { faultPoint } from '../core/faults';
import { removeStaleTemporaries, writeFileAtomic } from '../core/io';

// @2: HAT's embeddings one tensor per task; a checkpoint of another version is not resumed (the run starts afresh)
export const CHECKPOINT_FORMAT = 'hat-ts/checkpoint@2';

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  /** Tasks finished (the run continues with task `tasksDone`). */
  tasksDone: number;
  configHash: string;
  tensors: { name: string; shape: number[]; offset: number }[];
  bytes: number;
  /** The data file, beside the manifest (absent in checkpoints written before: BASE.bin). */
  data?: string;
  /** sha256 of the data file (absent in checkpoints written before). */
  sha256?: string;
  /** Approach state that is not tensors. */
  json: unknown;
}

/** A checkpoint that cannot be used: the message names the file and says what to do. */
export class CheckpointError extends UserError {
  override name = 'CheckpointError';
}

/** A state with NaN or infinite values, refused as a checkpoint (the previous one is kept). */
export class NonFiniteStateError extends UserError {
  override name = 'NonFiniteStateError';
}

export function saveCheckpoint(
  base: string,
  tasksDone: number,
  configHash: string,
  tensors: Record<string, tf.Tensor>,
  json: unknown,
): void {
  const entries = Object.entries(tensors);
  const total = entries.reduce((n, [, t]) => n + t.size, 0);
  const data = new Float32Array(total);
  const index: CheckpointManifest['tensors'] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const values = t.dataSync();
    for (let i = 0; i < values.length; i++)
      if (!Number.isFinite(values[i]))
        throw new NonFiniteStateError(
          `the state to checkpoint holds ${values[i]} in ${name}: not written, ${base}.json (the last good checkpoint) is kept`,
        );
    data.set(values, offset);
    index.push({ name, shape: t.shape, offset });
    offset += t.size;
  }
  const bytes = new Uint8Array(data.buffer);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const dataFile = `${path.basename(base)}.${sha256.slice(0, 16)}.bin`;
  writeFileAtomic(path.join(path.dirname(base), dataFile), bytes);
  faultPoint('checkpoint-data'); // the tests' SIGKILL between the data and the manifest
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    tasksDone,
    configHash,
    tensors: index,
    bytes: data.byteLength,
    data: dataFile,
    sha256,
    json,
  };
  writeFileAtomic(`${base}.json`, JSON.stringify(manifest));
  faultPoint('checkpoint-manifest'); // ... and between the manifest and the removal of older data
  removeDataFiles(base, dataFile);
}

/** The data files of checkpoint `base` (all of them, or all but `keep`), and what killed writers left of it. */
function removeDataFiles(base: string, keep?: string): void {
  const dir = path.dirname(base);
  const stem = path.basename(base);
  removeStaleTemporaries(dir, `${stem}.`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names)
    if (name !== keep && (name === `${stem}.bin` || (name.startsWith(`${stem}.`) && /\.[0-9a-f]{16}\.bin$/.test(name))))
      fs.rmSync(path.join(dir, name), { force: true });
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/** The manifest's problem, or undefined when its shape is right. */
function manifestProblem(m: Record<string, unknown>): string | undefined {
  if (!isCount(m.tasksDone)) return 'tasksDone is not a count';
  if (typeof m.configHash !== 'string') return 'configHash is missing';
  if (!isCount(m.bytes) || m.bytes % 4 !== 0) return 'bytes is not a multiple of 4';
  if (m.data !== undefined && (typeof m.data !== 'string' || m.data.includes('/') || m.data.includes('\\')))
    return 'data is not a file name';
  if (m.sha256 !== undefined && (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256)))
    return 'sha256 is not a hash';
  if (!Array.isArray(m.tensors)) return 'tensors is not a list';
  const floats = (m.bytes as number) / 4;
  for (const [i, t] of (m.tensors as unknown[]).entries()) {
    const e = t as { name?: unknown; shape?: unknown; offset?: unknown } | null;
    if (typeof e?.name !== 'string') return `tensors[${i}] has no name`;
    if (!Array.isArray(e.shape) || !e.shape.every(isCount)) return `tensors[${i}] (${e.name}) has no valid shape`;
    const size = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (!isCount(e.offset) || e.offset + size > floats)
      return `tensors[${i}] (${e.name}) lies outside the ${m.bytes} bytes of data`;
  }
  return undefined;
}

/**
 * Loads a checkpoint made for `configHash`, or undefined when there is none (or it belongs to another config).
 * A damaged one (unreadable, torn, wrong size or checksum) is a CheckpointError naming the file.
 */
export function loadCheckpoint(
  base: string,
  configHash: string,
): { manifest: CheckpointManifest; tensors: Record<string, tf.Tensor> } | undefined {
  const file = `${base}.json`;
  const damaged = (what: string) =>
    new CheckpointError(
      `${what}: the checkpoint is damaged. Delete ${base}.* to start the run afresh (or restore them from a backup).`,
    );
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw damaged(`${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw damaged(`${file} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw damaged(`${file} is not a checkpoint manifest`);
  const m = parsed as Record<string, unknown>;
  if (m.format !== CHECKPOINT_FORMAT) {
    if (typeof m.format === 'string' && m.format.startsWith('hat-ts/checkpoint@')) return undefined; // another version's
    throw damaged(`${file} is not a checkpoint manifest (format ${JSON.stringify(m.format)})`);
  }
  if (m.configHash !== configHash) return undefined;
  const problem = manifestProblem(m);
  if (problem) throw damaged(`${file}: ${problem}`);
  const manifest = m as unknown as CheckpointManifest;
  const dataFile = path.join(path.dirname(base), manifest.data ?? `${path.basename(base)}.bin`);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(dataFile);
  } catch (e) {
    throw damaged(`${dataFile} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (buf.length !== manifest.bytes)
    throw damaged(`${dataFile} has ${buf.length} bytes, its manifest says ${manifest.bytes}`);
  if (manifest.sha256 && createHash('sha256').update(buf).digest('hex') !== manifest.sha256)
    throw damaged(`${dataFile} does not match the checksum in its manifest`);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const tensors: Record<string, tf.Tensor> = {};
  for (const { name, shape, offset } of manifest.tensors) {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors[name] = tf.tensor(data.subarray(offset, offset + size), shape);
  }
  return { manifest, tensors };
}

export function removeCheckpoint(base: string): void {
  fs.rmSync(`${base}.json`, { force: true });
  removeDataFiles(base);
}

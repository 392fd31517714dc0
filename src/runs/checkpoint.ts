/**
 * Checkpoints after every task: all network variables plus the approach's own state (HAT's cumulative
 * attention, ...), so an interrupted run resumes at the next task with identical results. Written as a
 * raw float32 file and a JSON manifest, each atomically; the manifest is written last and names the size
 * of the data it describes, so a torn pair is detected.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic } from '../core/io';

export interface CheckpointManifest {
  format: 'hat-ts/checkpoint@1';
  /** Tasks finished (the run continues with task `tasksDone`). */
  tasksDone: number;
  configHash: string;
  tensors: { name: string; shape: number[]; offset: number }[];
  bytes: number;
  /** Approach state that is not tensors. */
  json: unknown;
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
    data.set(t.dataSync(), offset);
    index.push({ name, shape: t.shape, offset });
    offset += t.size;
  }
  writeFileAtomic(`${base}.bin`, new Uint8Array(data.buffer));
  const manifest: CheckpointManifest = {
    format: 'hat-ts/checkpoint@1',
    tasksDone,
    configHash,
    tensors: index,
    bytes: data.byteLength,
    json,
  };
  writeFileAtomic(`${base}.json`, JSON.stringify(manifest));
}

/** Loads a checkpoint made for `configHash`, or undefined when there is none (or it belongs to another config). */
export function loadCheckpoint(
  base: string,
  configHash: string,
): { manifest: CheckpointManifest; tensors: Record<string, tf.Tensor> } | undefined {
  if (!fs.existsSync(`${base}.json`)) return undefined;
  const manifest = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8')) as CheckpointManifest;
  if (manifest.format !== 'hat-ts/checkpoint@1' || manifest.configHash !== configHash) return undefined;
  const buf = fs.readFileSync(`${base}.bin`);
  if (buf.length !== manifest.bytes) {
    throw new Error(
      `${base}.bin has ${buf.length} bytes, its manifest says ${manifest.bytes}: the checkpoint is damaged. Delete ${base}.* to start the run afresh.`,
    );
  }
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
  fs.rmSync(`${base}.bin`, { force: true });
}

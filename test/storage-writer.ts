/**
 * A writer process for test/robustness-storage.test.ts: `tsx test/storage-writer.ts DIR FROM TO KB [NAME]` writes
 * versions FROM..TO of a result-like JSON file (KB kilobytes, its version and a checksum inside) and of a
 * checkpoint (two tensors filled with the version) into DIR, one after the other, as runs do. HAT_FAULT kills
 * it at a chosen point; the test kills it at random moments too.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { writeFileAtomic } from '../src/core/io';
import { saveCheckpoint } from '../src/runs/checkpoint';

/** A JSON document of about `kb` kilobytes saying its version, with the sha256 of its padding. */
export function versionDocument(version: number, kb: number, writer = ''): string {
  const unit = `${writer}${version}:`;
  const padding = unit.repeat(Math.ceil((kb * 1024) / unit.length)).slice(0, kb * 1024);
  return JSON.stringify({ version, writer, sha256: createHash('sha256').update(padding).digest('hex'), padding });
}

/** The version a document says, after checking its checksum (throws when it is torn or mixed). */
export function checkDocument(text: string): { version: number; writer: string } {
  const d = JSON.parse(text) as { version: number; writer: string; sha256: string; padding: string };
  if (createHash('sha256').update(d.padding).digest('hex') !== d.sha256) throw new Error('checksum mismatch');
  return d;
}

/** Version v of the result-like file, then of the checkpoint, as a run writes them after a task. */
export function writeVersion(dir: string, v: number, kb: number, name = 'result'): void {
  writeFileAtomic(path.join(dir, `${name}.json`), versionDocument(v, kb, name));
  const tensors = { a: tf.fill([64, 64], v), b: tf.fill([4096], -v) };
  saveCheckpoint(path.join(dir, `${name}.ckpt`), v, 'hash', tensors, { version: v });
  tf.dispose(Object.values(tensors));
}

async function main(): Promise<void> {
  const [dir, from, to, kb, name = 'result'] = process.argv.slice(2);
  await tf.setBackend('cpu');
  for (let v = Number(from); v <= Number(to); v++) writeVersion(dir, v, Number(kb), name);
}

if (require.main === module) void main();

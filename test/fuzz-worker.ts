/**
 * One fuzz target (test/fuzz-targets.ts) in a worker thread: fast-check with a fixed seed and a bounded number
 * of cases feeds it random bytes, truncations and byte edits of its genuine samples (and, for JSON and YAML
 * formats, samples with a subtree replaced or removed). Posts { case } before each case (so that the test can
 * say which case hung when it has to stop the worker) and { done } or { failure } at the end.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { UserError } from '../src/core/errors';
import { TARGETS } from './fuzz-targets';

interface Job {
  target: string;
  seed: number;
  runs: number;
}

/** Every path into a JSON value (keys and indices). */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [prefix];
  const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  return [prefix, ...keys.flatMap((k) => paths((v as Record<string | number, unknown>)[k], [...prefix, k]))];
}

/** `value` with the subtree at `at` replaced by `by` (or removed when `by` is undefined). */
function replaced(value: unknown, at: (string | number)[], by: unknown): unknown {
  if (!at.length) return by;
  const copy = (Array.isArray(value) ? [...(value as unknown[])] : { ...(value as object) }) as Record<
    string | number,
    unknown
  >;
  const [k, ...rest] = at;
  if (!rest.length && by === undefined) {
    if (Array.isArray(copy)) copy.splice(k as number, 1);
    else delete copy[k];
  } else copy[k] = replaced(copy[k], rest, by);
  return copy;
}

function bytesFrom(samples: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const sample = fc.constantFrom(...samples);
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    sample.chain((s) => fc.nat(s.length).map((n) => s.subarray(0, n))),
    sample.chain((s) =>
      fc.array(fc.tuple(fc.nat(s.length - 1), fc.nat(255)), { minLength: 1, maxLength: 8 }).map((edits) => {
        const c = Uint8Array.from(s);
        for (const [i, v] of edits) c[i] = v;
        return c;
      }),
    ),
    sample.chain((s) =>
      fc
        .tuple(fc.nat(s.length), fc.uint8Array({ maxLength: 64 }))
        .map(([n, tail]) => Uint8Array.from([...s.subarray(0, n), ...tail])),
    ),
  );
}

async function main(job: Job): Promise<void> {
  await tf.setBackend('cpu');
  const target = TARGETS[job.target];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-fuzz-'));
  const file = path.join(dir, target.file);
  const samples = await target.samples(dir);
  const structured = (await target.structured?.(dir)) ?? [];
  const serialise = (v: unknown) => (target.serialise ? target.serialise(v) : JSON.stringify(v, null, 1));
  const arbitraries = [bytesFrom(samples)];
  if (structured.length) {
    const mutation = fc.constantFrom(...structured).chain((v) => {
      const all = paths(v);
      return fc
        .tuple(fc.nat(all.length - 1), fc.option(fc.jsonValue({ maxDepth: 2 }), { freq: 4 }))
        .map(([i, by]) => Buffer.from(serialise(replaced(v, all[i], by ?? undefined)) ?? ''));
    });
    arbitraries.push(mutation, mutation); // as often as all the byte-level kinds together
  }
  let n = 0;
  const property = fc.asyncProperty(fc.oneof(...arbitraries), async (bytes) => {
    parentPort!.postMessage({
      case: ++n,
      input: Buffer.from(bytes.subarray(0, 96)).toString('base64'),
      size: bytes.length,
    });
    fs.writeFileSync(file, bytes);
    try {
      await target.parse(file, dir);
    } catch (e) {
      const err = e as Error;
      if (!(e instanceof UserError)) throw new Error(`not a UserError but ${err?.name}: ${err?.stack ?? String(e)}`);
      if (!err.message.includes(target.names ?? target.file))
        throw new Error(`the message does not name the file: ${err.message}`);
      if (err.message.includes('\n')) throw new Error(`more than one line: ${err.message}`);
    }
  });
  try {
    await fc.assert(property, { seed: job.seed, numRuns: job.runs, endOnFailure: true });
    parentPort!.postMessage({ done: n });
  } catch (e) {
    const err = e as Error & { cause?: Error };
    // the counterexample's bytes are long: the cause (what the parser threw) goes first
    parentPort!.postMessage({ failure: `${err.cause?.message ?? ''}\n${err.message.slice(0, 3000)}` });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main(workerData as Job);

/**
 * Resident inputs: a split's preprocessed inputs as one tensor on the compute device, so that a mini-batch is
 * gathered there (one small op) instead of being preprocessed in JavaScript and copied in at every step. The
 * tensor holds exactly the floats the per-batch path writes (the same Preprocess), so results do not change.
 *
 * Memory is the price (a permuted-MNIST task's splits ~230 MB, a CIFAR training split ~600 MB as float32), so
 * the splits used most recently are kept within a budget: HAT_DATA_CACHE_MB megabytes per process (default
 * 1024; 0 keeps none: every batch is built in JavaScript). A split larger than the budget is never made
 * resident. runExperiment releases them all when a run ends.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../core/errors';
import type { Split } from './experiments';

/** The environment variable of the budget, and its default in megabytes. */
export const RESIDENT_BUDGET_ENV = 'HAT_DATA_CACHE_MB';
export const RESIDENT_BUDGET_DEFAULT_MB = 1024;

/** The budget in bytes, from HAT_DATA_CACHE_MB; a value that is not a number of megabytes ≥ 0 stops the run. */
export function residentBudgetBytes(): number {
  const set = process.env[RESIDENT_BUDGET_ENV];
  if (set === undefined || set.trim() === '') return RESIDENT_BUDGET_DEFAULT_MB * 2 ** 20;
  const mb = Number(set);
  if (!Number.isFinite(mb) || mb < 0)
    throw new UserError(
      `${RESIDENT_BUDGET_ENV}=${set} is not a number of megabytes; set it to 0 or more (default ${RESIDENT_BUDGET_DEFAULT_MB}), or unset it`,
    );
  return mb * 2 ** 20;
}

/** The resident splits, least recently used first (a Map iterates in insertion order; a use re-inserts). */
const resident = new Map<Split, tf.Tensor>();
let residentBytes = 0;

function evict(split: Split): void {
  const t = resident.get(split);
  if (!t) return;
  resident.delete(split);
  residentBytes -= t.size * 4;
  t.dispose();
}

/**
 * The preprocessed inputs of every sample of `split`, [samples, ...input shape] (sample i is image
 * split.rows[i]), made on first use and kept while the budget allows; null when the split does not fit in it.
 * The tensor belongs to this cache: callers take batches from it (gather, slice) and never dispose it.
 */
export function residentInputs(split: Split): tf.Tensor | null {
  const pre = split.preprocess;
  const n = split.rows.length;
  const bytes = n * pre.size * 4;
  const budget = residentBudgetBytes();
  const fits = n > 0 && bytes <= budget;
  if (!fits) evict(split); // the budget may have been lowered since it was made
  // within the budget (counting this split if it is to be made), the least recently used others out first
  const coming = fits && !resident.has(split) ? bytes : 0;
  for (const old of [...resident.keys()]) {
    if (residentBytes + coming <= budget) break;
    if (old !== split) evict(old);
  }
  if (!fits) return null;
  let t = resident.get(split);
  if (t)
    resident.delete(split); // re-inserted below: now the most recently used
  else {
    const x = new Float32Array(n * pre.size);
    for (let i = 0; i < n; i++) pre.write(split.images, split.rows[i], x, i * pre.size);
    // kept: the first use may come inside a caller's tf.tidy
    t = tf.keep(tf.tensor(x, [n, ...pre.outShape]));
    residentBytes += bytes;
  }
  resident.set(split, t);
  return t;
}

/** Disposes every resident split (the end of a run; they are made again on demand). */
export function releaseResidentInputs(): void {
  for (const split of [...resident.keys()]) evict(split);
}

/** How many splits are resident and their bytes (for tests and diagnostics). */
export function residentUsage(): { splits: number; bytes: number } {
  return { splits: resident.size, bytes: residentBytes };
}

/**
 * HAT's annealing of s within an epoch (spec §2.4), the one definition used by training (hat.ts) and by the
 * figures (figures/mechanism.ts). No TensorFlow.
 */

/** Reference code: by the index of the batch's first sample; paper: by the batch index. */
export type ScheduleForm = 'code' | 'paper';

export interface SchedulePosition {
  /** Batch of the epoch, from 0, and the number of batches. */
  batch: number;
  batches: number;
  /** Index of the batch's first sample, and the epoch's number of samples. */
  start: number;
  samples: number;
}

/**
 * s for a batch: from 1/smax to smax over the epoch.
 * - paper form: s_b = 1/smax + (smax − 1/smax)·b/(B − 1), b = 0..B−1 (smax when B = 1);
 * - code form: s = 1/smax + (smax − 1/smax)·i/N, i = first sample of the batch (the last batch gets a little
 *   less than smax).
 */
export function annealedS(form: ScheduleForm, smax: number, p: SchedulePosition): number {
  if (form === 'paper') return p.batches > 1 ? 1 / smax + ((smax - 1 / smax) * p.batch) / (p.batches - 1) : smax;
  return 1 / smax + (smax - 1 / smax) * (p.start / p.samples);
}

/** The positions of an epoch of `samples` samples in batches of `batchSize` (the last one smaller). */
export function epochPositions(samples: number, batchSize: number): SchedulePosition[] {
  const batches = Math.ceil(samples / batchSize);
  return Array.from({ length: batches }, (_, batch) => ({ batch, batches, start: batch * batchSize, samples }));
}

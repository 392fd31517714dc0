/**
 * The options that shape a run's data and network (how many tasks, which datasets, how many images, the
 * validation split, hidden widths, initialisation): passed unchanged from `hat run`, `hat quick` and grid
 * files to the run, so they are listed once.
 */
import type { RunOptions } from './run';

export const RUN_SHAPE_KEYS = ['tasks', 'datasets', 'maxTrain', 'maxTest', 'validation', 'hidden', 'init'] as const;
export type RunShape = Pick<RunOptions, (typeof RUN_SHAPE_KEYS)[number]>;

/** The run-shaping options of `o`, in the order above (undefined where `o` has none). */
export function runShape(o: RunShape): RunShape {
  const out: Record<string, unknown> = {};
  for (const k of RUN_SHAPE_KEYS) out[k] = o[k];
  return out as RunShape;
}

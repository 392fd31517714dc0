/** Shared test set-up: one backend per test process (native when built, as in CI). */
import { type BackendInfo, initBackend } from '../src/backend/index';

export function backend(): Promise<BackendInfo> {
  return initBackend(process.env.HAT_BACKEND ?? 'auto');
}

import { type Task } from '../src/data/experiments';
import { CallbackList, type Callback } from '../src/training/callbacks';
import { learnTask } from '../src/training/trainer';
import { TRAIN_DEFAULTS, type TaskLog, type TrainOptions, type Predictor } from '../src/training/types';

/** Learns task t of `tasks` with the standard protocol (options over the defaults), seed 3, with optional callbacks. */
export function learn(
  approach: Predictor,
  t: number,
  tasks: Task[],
  opts: Partial<TrainOptions> = {},
  callbacks: Callback[] = [],
  seed = 3,
): TaskLog {
  return learnTask(approach, {
    t,
    tasks,
    opts: { ...TRAIN_DEFAULTS, ...opts },
    seed,
    callbacks: new CallbackList(callbacks),
  });
}

/**
 * Joint (multitask) reference: before each task t, reset to the initial weights and train on the union of
 * tasks 0..t, each sample's loss on its own head; validation on the union of their validation sets (spec §5).
 */
import { SampleSource } from '../data/experiments';
import { Trainer } from '../training/trainer';
import type { TaskContext, TaskData, TaskFitter } from '../training/types';
import { SgdRestart } from './sgd-restart';

/** The samples of tasks 0..t as one source each for training and validation. */
export function tasksSoFar(ctx: TaskContext): TaskData {
  const upTo = ctx.tasks.slice(0, ctx.t + 1);
  return {
    train: new SampleSource(upTo.map((task, u) => ({ split: task.train, task: u }))),
    valid: new SampleSource(upTo.map((task, u) => ({ split: task.valid, task: u }))),
  };
}

export class Joint extends SgdRestart {
  override readonly id = 'joint';
  override trainer(ctx: TaskContext): TaskFitter {
    return new Trainer(this, ctx, tasksSoFar(ctx));
  }
}

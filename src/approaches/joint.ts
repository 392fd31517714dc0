/**
 * Joint (multitask) reference: before each task t, reset to the initial weights and train on the union of
 * tasks 0..t, each sample's loss on its own head; validation on the union of their validation sets (spec §5).
 */
import { SampleSource, Task } from '../data/experiments';
import { SgdRestart } from './sgd-restart';

export class Joint extends SgdRestart {
  override readonly id = 'joint';
  override sources(t: number, tasks: Task[]): { train: SampleSource; valid: SampleSource } {
    const upTo = tasks.slice(0, t + 1);
    return {
      train: new SampleSource(upTo.map((task, u) => ({ split: task.train, task: u }))),
      valid: new SampleSource(upTo.map((task, u) => ({ split: task.valid, task: u }))),
    };
  }
}

/**
 * The frozen "old" model of LwF and LFL: a copy of the network taken after each task, evaluated in eval mode
 * (no dropout) and never trained (its variables are never passed to the optimiser). One copy is kept: the
 * newest replaces the previous one, as in the reference.
 */
import { type Task } from '../data/experiments';
import { type Network, localName } from '../nets/network';
import type { LearnerState } from '../training/types';
import { NetworkLearner } from './base';

export class FrozenCopy {
  model: Network | null = null;

  /** Replace the copy with the network's current values. */
  take(net: Network): void {
    this.model?.dispose();
    this.model = net.copy();
  }

  state(into: LearnerState): void {
    if (!this.model) return;
    for (const v of this.model.variables()) into.tensors[`old/${localName(this.model, v)}`] = v;
  }

  load(net: Network, state: LearnerState): void {
    this.model?.dispose();
    this.model = null;
    const keys = Object.keys(state.tensors).filter((k) => k.startsWith('old/'));
    if (keys.length === 0) return;
    const copy = net.copy();
    for (const v of copy.variables()) {
      const t = state.tensors[`old/${localName(copy, v)}`];
      if (!t) throw new Error(`checkpoint has no value for the old model's ${localName(copy, v)}`);
      v.assign(t);
    }
    this.model = copy;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = null;
  }
}

/** An approach that keeps a frozen copy of its network from the end of the previous task (LwF, LFL). */
export abstract class FrozenCopyLearner extends NetworkLearner {
  readonly old = new FrozenCopy();

  override endTask(t: number, tasks: Task[]): void {
    super.endTask(t, tasks);
    this.old.take(this.net);
  }
  protected override extraState(): LearnerState {
    const state: LearnerState = { tensors: {}, json: null };
    this.old.state(state);
    return state;
  }
  protected override loadExtraState(state: LearnerState): void {
    this.old.load(this.net, state);
  }
  override dispose(): void {
    this.old.dispose();
    super.dispose();
  }
}

/**
 * The frozen "old" model of LwF and LFL: a copy of the network taken after each task, evaluated in eval mode
 * (no dropout) and never trained (its variables are never passed to the optimiser). One copy is kept: the
 * newest replaces the previous one, as in the reference.
 */

import { Network } from '../nets/network';
import { ApproachState } from './approach';

export class FrozenCopy {
  model: Network | null = null;

  /** Replace the copy with the network's current values. */
  take(net: Network): void {
    this.model?.dispose();
    this.model = net.copy();
  }

  state(into: ApproachState): void {
    if (!this.model) return;
    const prefix = this.model.prefix.length + 1;
    for (const v of this.model.variables()) into.tensors[`old/${v.name.slice(prefix)}`] = v;
  }

  load(net: Network, state: ApproachState): void {
    this.model?.dispose();
    this.model = null;
    const keys = Object.keys(state.tensors).filter((k) => k.startsWith('old/'));
    if (keys.length === 0) return;
    const copy = net.copy();
    const prefix = copy.prefix.length + 1;
    for (const v of copy.variables()) {
      const t = state.tensors[`old/${v.name.slice(prefix)}`];
      if (!t) throw new Error(`checkpoint has no value for the old model's ${v.name.slice(prefix)}`);
      v.assign(t);
    }
    this.model = copy;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = null;
  }
}


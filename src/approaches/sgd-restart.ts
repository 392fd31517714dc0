/** SGD-R: reset the whole network to its initial weights before every task (spec §5, optional baseline). */
import * as tf from '@tensorflow/tfjs-core';
import { Task } from '../data/experiments';
import { Network } from '../nets/network';
import { NetworkApproach, NetworkApproachOptions } from './approach';

export class SgdRestart extends NetworkApproach {
  readonly id: string = 'sgd-restart';
  private readonly initial: tf.Tensor[];
  constructor(net: Network, opts?: NetworkApproachOptions) {
    super(net, opts);
    this.initial = net.snapshot();
  }
  override beginTask(t: number, tasks: Task[]): void {
    super.beginTask(t, tasks);
    this.net.restore(this.initial);
  }
  override dispose(): void {
    tf.dispose(this.initial);
    super.dispose();
  }
}

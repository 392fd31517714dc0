/** SGD-R: reset the whole network to its initial weights before every task (spec §5, optional baseline). */
import * as tf from '@tensorflow/tfjs-core';
import { type Task } from '../data/experiments';
import { type Network } from '../nets/network';
import { Sgd, type SgdParams } from './sgd';

export class SgdRestart extends Sgd {
  override readonly id: string = 'sgd-restart';
  private readonly initial: tf.Tensor[];
  constructor(net: Network, params: Partial<SgdParams> = {}) {
    super(net, params);
    this.initial = net.snapshot();
  }
  protected override afterAddTask(t: number): void {
    // the restart point of a new head is its initial value (baseline networks have no embeddings after the heads)
    const head = this.net.heads[t];
    this.initial.push(tf.clone(head.weight), tf.clone(head.bias));
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

/**
 * Random reference: predicts labels drawn from the task's training-label distribution (stratified random,
 * spec §5). Its accuracy A_R is the floor of the forgetting ratio.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Batch, SampleSource, Task } from '../data/experiments';
import { Rng } from '../rng';
import { Approach, Evaluation } from './approach';

export class RandomGuess implements Approach {
  readonly id = 'random';
  readonly trains = false;
  readonly model = null;
  readonly hyper = {};
  /** Training-label distribution per task. */
  private readonly priors: number[][] = [];
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(`random-guess/${seed}`);
  }

  sources(t: number, tasks: Task[]): { train: SampleSource; valid: SampleSource } {
    return { train: SampleSource.of(tasks[t].train, t), valid: SampleSource.of(tasks[t].valid, t) };
  }

  beginTask(t: number, tasks: Task[]): void {
    const { labels } = tasks[t].train;
    const counts = new Array<number>(tasks[t].classes).fill(0);
    for (const l of labels) counts[l]++;
    this.priors[t] = counts.map((c) => c / labels.length);
  }

  trainBatch(_batch: Batch, _lr: number, _progress: number): tf.Scalar {
    throw new Error('the random reference does not train');
  }
  validationLoss(): number {
    return NaN;
  }
  endTask(): void {}

  evaluate(source: SampleSource, task: number): Evaluation {
    const prior = this.priors[task];
    const cdf = prior.map(((sum) => (p: number) => (sum += p))(0));
    const rng = this.rng.fork(`evaluate/${task}`);
    let correct = 0;
    let loss = 0;
    for (const part of source.parts) {
      for (const y of part.split.labels) {
        const u = rng.next();
        let k = cdf.findIndex((c) => u < c);
        if (k < 0) k = cdf.length - 1;
        if (k === y) correct++;
        loss -= Math.log(Math.max(prior[y], 1e-12));
      }
    }
    return { accuracy: correct / source.n, loss: loss / source.n };
  }

  snapshot(): tf.Tensor[] {
    return [];
  }
  restore(): void {}
  summary(): Record<string, unknown> {
    return { priors: this.priors };
  }
  checkpointState(): { tensors: Record<string, tf.Tensor>; json: unknown } {
    return { tensors: {}, json: { priors: this.priors } };
  }
  loadCheckpointState(state: { json: unknown }): void {
    this.priors.splice(0, this.priors.length, ...(state.json as { priors: number[][] }).priors);
  }
  dispose(): void {}
}

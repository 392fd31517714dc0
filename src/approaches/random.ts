/**
 * Random reference: predicts labels drawn from the task's training-label distribution (stratified random,
 * spec §5). Its accuracy A_R is the floor of the forgetting ratio. A predictor: it never trains.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../core/rng';
import { type SampleSource, type Task } from '../data/experiments';
import type { Evaluation, LearnerState, Predictor } from '../training/types';

export class RandomGuess implements Predictor {
  readonly id = 'random';
  readonly hyper = {};
  /** Training-label distribution per task. */
  private readonly priors: number[][] = [];
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(`random-guess/${seed}`);
  }

  beginTask(t: number, tasks: Task[]): void {
    const { labels } = tasks[t].train;
    const counts = new Array<number>(tasks[t].classes).fill(0);
    for (const l of labels) counts[l]++;
    this.priors[t] = counts.map((c) => c / labels.length);
  }
  endTask(): void {}

  evaluate(source: SampleSource, task: number): Evaluation {
    const prior = this.priors[task];
    let sum = 0;
    const cdf = prior.map((p) => (sum += p));
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

  /** The task's training-label distribution for every input (what random guessing expects). */
  predict(x: tf.Tensor, task: number): tf.Tensor2D {
    return tf.tidy(() => tf.tile(tf.tensor2d([this.priors[task]]), [x.shape[0], 1]) as tf.Tensor2D);
  }

  describe(): null {
    return null;
  }
  summary(): Record<string, unknown> {
    return { priors: this.priors };
  }
  state(): LearnerState {
    return { tensors: {}, json: { priors: this.priors } };
  }
  loadState(state: LearnerState): void {
    this.priors.splice(0, this.priors.length, ...(state.json as { priors: number[][] }).priors);
  }
  dispose(): void {}
}

/**
 * One benchmark process: training samples/s of the full step (HAT, SGD, EWC) and evaluation samples/s, on
 * the MLP and the AlexNet, on one backend; JSON on stdout. `npm run bench` (bench/index.ts) starts one per
 * backend and thread setting and interleaves them; run alone:
 *
 *   npx tsx bench/steps.ts --backend native|wasm [--configs hat-mlp,...] [--steps-mlp 30] [--steps-alexnet 15]
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index';
import { evaluateLogits } from '../src/approaches/base';
import { SampleSource } from '../src/data/experiments';
import { flatPreprocess, imagePreprocess } from '../src/data/preprocess';
import { type Network } from '../src/nets/network';
import type { NetworkKind } from '../src/nets/config';
import { BATCH, arg, atSecondTask, position, randomBatch, rssMb } from './common';

export const STEP_CONFIGS = [
  'hat-mlp',
  'sgd-mlp',
  'ewc-mlp',
  'hat-alexnet',
  'sgd-alexnet',
  'ewc-alexnet',
  'eval-mlp',
  'eval-alexnet',
] as const;
const HEADS = Array<number>(10).fill(10); // 10 tasks of 10 classes, as the PyTorch script

export interface StepResult {
  config: string;
  samplesPerSecond: number;
  steps: number;
  tensorsBefore: number;
  tensorsAfter: number;
  rssBeforeMb: number;
  rssAfterMb: number;
}

function timeTraining(id: string, kind: NetworkKind, steps: number, warmup: number): StepResult {
  const learner = atSecondTask(id, kind, HEADS);
  const batch = randomBatch(kind);
  const step = (i: number) => {
    const loss = learner.trainBatch(batch, position(i));
    loss.dataSync();
    loss.dispose();
  };
  for (let i = 0; i < warmup; i++) step(i);
  const tensorsBefore = tf.memory().numTensors;
  const rssBeforeMb = rssMb();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step(warmup + i);
  const seconds = (performance.now() - t0) / 1000;
  const result = {
    config: `${id}-${kind}`,
    samplesPerSecond: (steps * BATCH) / seconds,
    steps,
    tensorsBefore,
    tensorsAfter: tf.memory().numTensors,
    rssBeforeMb,
    rssAfterMb: rssMb(),
  };
  tf.dispose([batch.x, batch.y]);
  learner.dispose();
  return result;
}

/** Eval-mode forward passes of the HAT network at s = smax over a source of random images (the evaluation loop). */
function timeEvaluation(kind: NetworkKind, batches: number): StepResult {
  const hat = atSecondTask('hat', kind, HEADS);
  const net = hat.model as Network;
  // a source of random stored images, preprocessed as a real split is
  const shape: [number, number, number] = kind === 'alexnet' ? [32, 32, 3] : [28, 28, 1];
  const n = batches * 512;
  const images = new Uint8Array(n * shape[0] * shape[1] * shape[2]).map((_, i) => (i * 2654435761) >>> 24);
  const preprocess =
    kind === 'alexnet'
      ? imagePreprocess(shape, 32, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
      : flatPreprocess(shape, 0.13, 0.31);
  const source = SampleSource.of(
    { images, rows: Int32Array.from({ length: n }, (_, i) => i), labels: new Int32Array(n), preprocess },
    1,
  );
  const logits = (x: tf.Tensor) => net.logits(net.features(x, { training: false, task: 1, s: 400 }).h, 1);
  evaluateLogits(source, logits); // warm-up
  const tensorsBefore = tf.memory().numTensors;
  const rssBeforeMb = rssMb();
  const t0 = performance.now();
  evaluateLogits(source, logits);
  const seconds = (performance.now() - t0) / 1000;
  const result = {
    config: `eval-${kind}`,
    samplesPerSecond: n / seconds,
    steps: batches,
    tensorsBefore,
    tensorsAfter: tf.memory().numTensors,
    rssBeforeMb,
    rssAfterMb: rssMb(),
  };
  hat.dispose();
  return result;
}

async function main(): Promise<void> {
  const backend = await initBackend(arg('--backend', 'native'));
  const configs = arg('--configs', STEP_CONFIGS.join(',')).split(',');
  const steps = { mlp: Number(arg('--steps-mlp', '30')), alexnet: Number(arg('--steps-alexnet', '15')) };
  const warmup = Number(arg('--warmup', '3'));
  const results: StepResult[] = [];
  for (const c of configs) {
    const [what, kind] = c.split('-') as [string, NetworkKind];
    results.push(
      what === 'eval' ? timeEvaluation(kind, kind === 'mlp' ? 20 : 4) : timeTraining(what, kind, steps[kind], warmup),
    );
  }
  process.stdout.write(
    JSON.stringify({
      backend: backend.name,
      threads: process.env.TF_NUM_INTRAOP_THREADS ?? 'default',
      onednn: process.env.TF_ENABLE_ONEDNN_OPTS ?? 'default',
      fusedKernels: backend.fusedKernels ?? null,
      results,
    }) + '\n',
  );
}

if (require.main === module) void main();

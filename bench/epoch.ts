/**
 * One whole epoch of a real task, training plus the protocol's evaluations (the validation objective; the
 * MNIST setups validate on the training set, as the reference): split MNIST's first task with HAT's MLP
 * (784-2000-2000), and a mixture task on the AlexNet. Two epochs run and the second is the measure, as the
 * authors' per-batch costs it is compared with are steady-state ones; the first (the process's first use of
 * every kernel and shape: oneDNN's JIT, first allocations) is reported beside it. JSON on stdout, for
 * bench/index.ts.
 *
 *   npx tsx bench/epoch.ts [--backend native] [--which mnist2|mixture|both]
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index';
import { createApproach } from '../src/approaches/index';
import { buildExperiment, type ExperimentName } from '../src/data/experiments';
import { availableDatasets, dataDirs } from '../src/data/datasets';
import { CallbackList } from '../src/training/callbacks';
import { learnTask } from '../src/training/trainer';
import { TRAIN_DEFAULTS, type Learner } from '../src/training/types';
import { arg, rssMb } from './common';

export interface EpochResult {
  setup: string;
  task: string;
  trainSamples: number;
  validSamples: number | 'train';
  /** Wall time of the (second) epoch: training batches plus the validation pass. */
  seconds: number;
  /** The same for the first epoch, warm-up included. */
  firstEpochSeconds: number;
  trainSeconds: number;
  tensorsBefore: number;
  tensorsAfter: number;
  rssBeforeMb: number;
  rssAfterMb: number;
}

function epoch(experiment: ExperimentName, datasets?: string[]): EpochResult {
  const exp = buildExperiment(experiment, { seed: 0, tasks: 1, datasets });
  const task = exp.tasks[0];
  const hat = createApproach('hat', {
    kind: exp.network,
    inputShape: exp.inputShape,
    heads: [task.classes],
    seed: 0,
  }) as Learner;
  const tensorsBefore = tf.memory().numTensors;
  const rssBeforeMb = rssMb();
  const log = learnTask(hat, {
    t: 0,
    tasks: exp.tasks,
    opts: { ...TRAIN_DEFAULTS, nepochs: 2 },
    seed: 0,
    callbacks: new CallbackList(),
  });
  const result: EpochResult = {
    setup: experiment,
    task: task.name,
    trainSamples: task.train.rows.length,
    validSamples: task.valid === task.train ? 'train' : task.valid.rows.length,
    seconds: log.epochs[1].seconds,
    firstEpochSeconds: log.epochs[0].seconds,
    trainSeconds: log.trainSeconds,
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
  const which = arg('--which', 'both');
  const results: EpochResult[] = [];
  if (which !== 'mixture') results.push(epoch('mnist2'));
  if (which !== 'mnist2') {
    // the mixture's CIFAR10 task (the offline mirror has 15,000 training images of it)
    const present = availableDatasets(dataDirs()).present.map((d) => d.name);
    if (present.includes('cifar10')) results.push(epoch('mixture', ['cifar10']));
  }
  process.stdout.write(JSON.stringify({ backend: backend.name, results }) + '\n');
}

if (require.main === module) void main();

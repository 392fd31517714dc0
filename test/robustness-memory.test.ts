/**
 * Memory soak: many epochs on small data (mnist2, MLP with 32 units, 320 training samples, 2 tasks of 50 epochs,
 * no early stop) for HAT (with its per-epoch gate and compression logs), EWC and PathNet (its own loop, 80 epochs
 * a task). The number of tensors is the same after every epoch of a task and back to where it was once the run
 * is disposed; the resident set size (after a garbage collection) grows by less than RSS_BOUND_MB from the end of
 * each task's warm-up (its first 10 epochs: first-time allocations of its code paths) to its end.
 *
 * Measured on the 2-core development machine (native backend, GC at both points, four runs): at most +3.7 MB
 * over the 40 (HAT, EWC) or 70 (PathNet) epochs, often less than 1 MB or negative; without the GC the RSS
 * creeps by about 0.1 MB an epoch until V8 collects. The bound, 20 MB, keeps a margin of over 5x: it fails a
 * leak of 0.5 MB an epoch or more outside tensors (native or JavaScript memory); leaked tensors of any size fail
 * the exact tensor count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';
import { runExperiment } from '../src/runs/run';
import type { MonitorName } from '../src/runs/monitors';
import { backend } from './helpers';

const RSS_BOUND_MB = 20;
const WARM_UP_EPOCHS = 10;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const rssMb = () => {
  gc();
  return process.memoryUsage().rss / 1e6;
};

for (const [approach, nepochs, monitor] of [
  ['hat', 50, ['gates', 'compression']],
  ['ewc', 50, []],
  ['pathnet', 40, []], // 20 generations x 2 paths x 2 epochs per task
] as [string, number, MonitorName[]][]) {
  test(`soak: ${approach}, 2 tasks x ${nepochs} epochs: flat tensor count, RSS growth under ${RSS_BOUND_MB} MB`, async (t) => {
    await backend();
    const before = tf.memory().numTensors;
    const counts: number[][] = [[], []];
    let epochs = 0;
    let warm = 0;
    const growth: number[] = [];
    const { approach: trained, result } = await runExperiment({
      experiment: 'mnist2',
      approach,
      seed: 1,
      hidden: [32],
      maxTrain: 320,
      maxTest: 64,
      train: { nepochs, patience: 1000 }, // no early stop: every epoch runs
      monitor,
      resDir: fs.mkdtempSync(path.join(os.tmpdir(), 'hat-soak-')),
      progress: 'quiet',
      resume: false,
      callbacks: [
        {
          onEpochEnd: (e) => {
            counts[e.t].push(tf.memory().numTensors);
            epochs++;
            // per task: from the end of its warm-up (first-time allocations of its code paths) to its last epoch
            if (counts[e.t].length === WARM_UP_EPOCHS) warm = rssMb();
          },
          onTaskEnd: () => void growth.push(rssMb() - warm),
        },
      ],
    });
    trained.dispose();
    assert.ok(epochs >= 2 * nepochs, `${epochs} epochs`);
    assert.equal(result.status, 'complete');
    for (const [t, c] of counts.entries())
      assert.deepEqual(new Set(c), new Set([c[0]]), `task ${t + 1}: the same number of tensors after every epoch`);
    assert.equal(tf.memory().numTensors, before, 'every tensor of the run released once it is disposed');
    const said = `RSS grew by ${growth.map((g) => g.toFixed(1)).join(' and ')} MB over the ${counts.map((c) => c.length - WARM_UP_EPOCHS).join(' and ')} epochs after each task's warm-up`;
    t.diagnostic(said);
    assert.equal(growth.length, 2);
    assert.ok(Math.max(...growth) < RSS_BOUND_MB, said);
  });
}

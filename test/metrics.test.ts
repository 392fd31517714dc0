import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forgettingRatios, meanUpTo, populationStd, std } from '../src/analysis/metrics';
import { averageRanks, spearman } from '../src/analysis/stats';
import { cumulativeMax, totalUsage, weightUsage } from '../src/analysis/usage';
import { alexnetConfig, mlpConfig } from '../src/nets/config';

test('forgetting ratio on a hand-made matrix', () => {
  const acc = [
    [0.9, 0, 0],
    [0.8, 0.7, 0],
    [0.55, 0.7, 0.6],
  ];
  const random = [0.1, 0.2, 0.5];
  const joint = [
    [0.9, 0, 0],
    [0.9, 0.7, 0],
    [0.9, 0.8, 0.7],
  ];
  const rho = forgettingRatios(acc, random, joint);
  // (0.8 - 0.1)/(0.9 - 0.1) - 1 = -0.125 ; (0.55-0.1)/(0.9-0.1) - 1 = -0.4375 ; (0.7-0.2)/(0.8-0.2) - 1 = -1/6 ; (0.6-0.5)/(0.7-0.5) - 1 = -0.5
  assert.deepEqual(
    rho.map((r) => r.map((x) => Number(x.toFixed(6)))),
    [[0], [-0.125, 0], [-0.4375, -0.166667, -0.5]],
  );
  const m = meanUpTo(rho);
  assert.ok(Math.abs(m[0]) < 1e-12);
  assert.ok(Math.abs(m[1] - -0.0625) < 1e-12);
  assert.ok(Math.abs(m[2] - (-0.4375 - 1 / 6 - 0.5) / 3) < 1e-12);
  // random-level accuracy gives -1, joint-level gives 0
  assert.equal(forgettingRatios([[0.1]], [0.1], [[0.9]])[0][0], -1);
  assert.throws(
    () =>
      forgettingRatios(
        [
          [0.5, 0],
          [0.5, 0.5],
        ],
        [0.1, 0.1],
        [[0.9]],
      ),
    /no reference/,
  );
});

test("standard deviations: sample (n-1) for CIs, population (n) as the paper's Table 1", () => {
  assert.ok(Math.abs(std([1, 2, 3, 4]) - Math.sqrt(5 / 3)) < 1e-12);
  assert.equal(std([3]), 0);
  // numpy.std([1, 2, 3, 4]) = sqrt(1.25)
  assert.ok(Math.abs(populationStd([1, 2, 3, 4]) - Math.sqrt(1.25)) < 1e-12);
});

test('weight usage counts weights whose two units are active (MLP)', () => {
  const cfg = mlpConfig({ heads: [2], hat: true, hidden: [4, 3], inputSize: 5 });
  const usage = weightUsage(cfg.layers, [
    [0.9, 0.1, 0.6, 0.2],
    [0.7, 0.7, 0.3],
  ]);
  assert.deepEqual(
    usage.map((u) => [u.activeUnits, u.activeWeights, u.weights]),
    [
      [2, 2 * 5, 4 * 5],
      [2, 2 * 2, 3 * 4],
    ],
  );
  assert.ok(Math.abs(totalUsage(usage) - 14 / 32) < 1e-12);
});

test('weight usage maps conv kernels and the flatten to channels (AlexNet)', () => {
  const cfg = alexnetConfig({ heads: [10], hat: true });
  const gates = cfg.layers.map((l) => Array.from({ length: l.units }, (_, i) => (i % 2 === 0 ? 1 : 0)));
  const u = weightUsage(cfg.layers, gates);
  // conv1: 32 active of 64 outputs x 3 inputs x 4x4
  assert.equal(u[0].activeWeights, 32 * 3 * 16);
  // conv2: 64 x 32 x 3x3
  assert.equal(u[1].activeWeights, 64 * 32 * 9);
  // fc1: 1024 active of 2048 outputs x (128 active conv3 channels x 2x2 positions)
  assert.equal(u[3].activeWeights, 1024 * 128 * 4);
  assert.equal(u[3].weights, 2048 * 1024);
});

test('cumulative attention is the elementwise max over tasks', () => {
  assert.deepEqual(cumulativeMax([[[0.1, 0.9]], [[0.5, 0.2]]]), [[0.5, 0.9]]);
});

test('average ranks and Spearman rank correlation, by hand', () => {
  assert.deepEqual(averageRanks([10, 20, 20, 5]), [2, 3.5, 3.5, 1]);
  assert.equal(spearman([1, 2, 3], [30, 20, 10]), -1);
  assert.equal(spearman([1, 2, 3, 4], [1, 4, 9, 16]), 1, 'monotone, not linear');
  // ranks (1,2,3) against (1,3,2): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·2/24 = 0.5 (no ties)
  assert.ok(Math.abs(spearman([-0.7, -0.3, -0.2], [-0.66, -0.06, -0.25]) - 0.5) < 1e-12);
  // a tie: ranks (1, 2.5, 2.5) against (1, 2, 3): Pearson of the ranks = 0.75 / sqrt(1.5 · 2) = √3/2
  assert.ok(Math.abs(spearman([1, 2, 2], [1, 2, 3]) - Math.sqrt(3) / 2) < 1e-12);
});

/**
 * The figures' data functions (src/figures) against hand-computed values, on small hand-made result files:
 * Table 1 (means, sample and population std, ranks, BWT and FWT, the paper's column), the robustness grid
 * and which runs are its cells, compression series, capacity and reuse, Fig. 2's curves. No TensorFlow.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compressionRows,
  families,
  compressionSeries,
  forgettingCurves,
  gradientAnnealingCurves,
  hyperGrid,
  hyperGridRows,
  isRobustnessCell,
  isTable1Run,
  referencedPart,
  reuseMatrix,
  sigmoidPrime,
  stat,
  table1Data,
  table1Rows,
  setupRows,
  paperRankCorrelation,
  unitUsage,
  usagePerTaskRows,
} from '../src/figures';
import { decodeGates, encodeGates } from '../src/analysis/usage';
import { figureHtml } from '../src/notebook';
import type { LayerSpec } from '../src/nets/geometry';
import { RESULT_FORMAT, type RunResult } from '../src/runs/result-file';

const close = (a: number, b: number, what: string, eps = 1e-12) =>
  assert.ok(Math.abs(a - b) <= eps, `${what}: ${a} is not ${b}`);

interface Fake {
  approach: string;
  seed: number;
  acc: number[][];
  tag?: string;
  parameters?: Record<string, unknown>;
  rho?: number[];
  extras?: Record<string, unknown>;
  experiment?: string;
  tasks?: string[];
  bestEpoch?: number;
}

/** A complete result file with only what the figures read filled in meaningfully. */
function fake(f: Fake): RunResult {
  const T = f.acc.length;
  const names = f.tasks ?? Array.from({ length: T }, (_, i) => `task${i}`);
  return {
    format: RESULT_FORMAT,
    status: 'complete',
    config: {
      approach: f.approach,
      tag: f.tag ?? f.approach,
      parameters: (f.parameters ?? {}) as RunResult['config']['parameters'],
      network: { init: 'pytorch' } as RunResult['config']['network'],
      protocol: {
        experiment: f.experiment ?? 'mixture',
        seed: f.seed,
        tasks: T,
        train: { nepochs: 3 } as RunResult['config']['protocol']['train'],
        validation: 0.15,
      },
      backendChoice: 'auto',
    },
    configHash: 'x',
    environment: {} as RunResult['environment'],
    data: {
      order: [],
      missing: [],
      tasks: names.map((name) => ({ name, classes: 10, train: 100, valid: 15, test: 50, source: 'fake' })),
    },
    network: null,
    timings: { started: '', seconds: 1, perTask: [] },
    accuracy: f.acc,
    loss: f.acc.map((r) => r.map(() => 0)),
    epochs: f.acc.map(() => ({ bestEpoch: f.bestEpoch ?? 1 })) as unknown as RunResult['epochs'],
    ...(f.rho ? { forgetting: { ratios: [], meanUpTo: f.rho, references: { random: 'r', joint: 'j' } } } : {}),
    averageAccuracy: f.acc.map((row, t) => row.slice(0, t + 1).reduce((a, b) => a + b, 0) / (t + 1)),
    summary: {},
    extras: f.extras ?? {},
  } as RunResult;
}

test('a family part-way through a grid: only the seeds with both references are ranked', () => {
  const acc = [[0.5]];
  const runs = [
    fake({ approach: 'random', seed: 0, acc }),
    fake({ approach: 'joint', seed: 0, acc }),
    fake({ approach: 'hat', seed: 0, acc }),
    fake({ approach: 'random', seed: 1, acc }), // seed 1's joint run not there yet
    fake({ approach: 'hat', seed: 1, acc }),
  ];
  const [family] = families(runs);
  assert.equal(family.hasReferences, false);
  const part = referencedPart(family)!;
  assert.equal(part.hasReferences, true);
  assert.deepEqual(
    part.results.map((r) => `${r.config.approach} ${r.config.protocol.seed}`),
    ['random 0', 'joint 0', 'hat 0'],
  );
  assert.match(part.description, /seeds 0;/);
  assert.equal(referencedPart(part), part, 'a family with all its references is itself');
  assert.equal(referencedPart(families(runs.filter((r) => r.config.approach !== 'joint'))[0]), undefined);
});

describe('Table 1 (table1Data, table1Rows, forgettingCurves)', () => {
  const joint = (seed: number) =>
    fake({
      approach: 'joint',
      seed,
      acc: [
        [0.9, 0, 0],
        [0.9, 0.9, 0],
        [0.9, 0.9, 0.8],
      ],
    });
  const random = (seed: number) =>
    fake({
      approach: 'random',
      seed,
      acc: [
        [0.1, 0, 0],
        [0.1, 0.1, 0],
        [0.1, 0.1, 0.1],
      ],
    });
  const runs = [
    random(0),
    random(1),
    joint(0),
    joint(1),
    fake({
      approach: 'hat',
      seed: 0,
      acc: [
        [0.9, 0, 0],
        [0.85, 0.8, 0],
        [0.8, 0.75, 0.7],
      ],
      rho: [0, -0.1, -0.2],
    }),
    fake({
      approach: 'hat',
      seed: 1,
      acc: [
        [0.9, 0, 0],
        [0.9, 0.8, 0],
        [0.9, 0.8, 0.6],
      ],
      rho: [0, -0.3, -0.4],
    }),
    fake({
      approach: 'sgd',
      seed: 0,
      acc: [
        [0.9, 0, 0],
        [0.5, 0.9, 0],
        [0.3, 0.5, 0.9],
      ],
      rho: [0, -0.5, -0.6],
    }),
    fake({
      approach: 'sgd',
      seed: 1,
      acc: [
        [0.9, 0, 0],
        [0.5, 0.9, 0],
        [0.3, 0.5, 0.9],
      ],
      rho: [0, -0.7, -0.8],
    }),
    // not rows of Table 1: a grid cell and a monitored run
    fake({
      approach: 'hat',
      tag: 'hat-smax25',
      parameters: { smax: 25 },
      seed: 0,
      acc: [
        [1, 0, 0],
        [1, 1, 0],
        [1, 1, 1],
      ],
      rho: [0, 0, 0],
    }),
    fake({
      approach: 'hat',
      tag: 'hat-gates',
      seed: 0,
      acc: [
        [1, 0, 0],
        [1, 1, 0],
        [1, 1, 1],
      ],
      extras: { gateLog: {} },
    }),
  ];

  test('rows: references first, then the paper order; only default runs; seeds, means and both stds', () => {
    assert.deepEqual(runs.map(isTable1Run), [true, true, true, true, true, true, true, true, false, false]);
    const d = table1Data(runs);
    assert.equal(d.tasks, 3);
    assert.deepEqual(
      d.rows.map((r) => r.label),
      ['Random', 'Joint', 'SGD', 'HAT'],
    );
    const hat = d.rows.find((r) => r.approach === 'hat')!;
    assert.deepEqual(hat.seeds, [0, 1]);
    close(hat.rho[1].mean, -0.2, 'HAT rho<=2 mean');
    close(hat.rho[1].popStd, 0.1, 'HAT rho<=2 population std');
    close(hat.rho[1].std, Math.SQRT2 * 0.1, 'HAT rho<=2 sample std');
    close(hat.rho[2].mean, -0.3, 'HAT rho<=3 mean');
    // A<=3: seed 0 (0.8+0.75+0.7)/3 = 75%, seed 1 (0.9+0.8+0.6)/3 = 76.667%
    close(hat.accuracy.mean, (75 + 230 / 3) / 2, 'HAT A<=T', 1e-9);
    // BWT: seed 0 ((0.8-0.9)+(0.75-0.8))/2 = -0.075; seed 1 ((0.9-0.9)+(0.8-0.8))/2 = 0
    close(hat.bwt.mean, -0.0375, 'HAT BWT', 1e-12);
    // FWT against joint: seed 0 ((0.9-0.9)+(0.8-0.9)+(0.7-0.8))/3 = -0.0667; seed 1 (0 - 0.1 - 0.2)/3 = -0.1
    close(hat.fwt!.mean, (-0.2 / 3 - 0.1) / 2, 'HAT FWT', 1e-12);
    assert.equal(hat.rank2, 1);
    assert.equal(hat.rankT, 1);
    assert.equal(d.rows.find((r) => r.approach === 'sgd')!.rank2, 2);
    // the paper: HAT has the least forgetting at t = 8 (rank 1 of 10), SGD is 8th
    assert.equal(hat.paperRank8, 1);
    assert.equal(d.rows.find((r) => r.approach === 'sgd')!.paperRank8, 8);
    assert.deepEqual(d.rows.find((r) => r.approach === 'random')!.rho, [], 'references have no rho rows');
  });

  test('the table beside the paper: mean (population std), ranks, and the paper rows not run', () => {
    const rows = table1Rows(table1Data(runs));
    const hat = rows.find((r) => r.approach === 'HAT')!;
    assert.equal(hat['ours rho<=2'], '-0.20 (0.10)');
    assert.equal(hat['ours rho<=3'], '-0.30 (0.10)');
    assert.equal(hat['paper rho<=8'], '-0.06 (0.01)');
    assert.equal(hat['rank<=3'], 1);
    assert.equal(rows.filter((r) => String(r.approach).endsWith('(not run)')).length, 8, '10 paper rows, 2 run');
    assert.ok(!rows.some((r) => r.approach === 'Random' || r.approach === 'Joint'));
  });

  test('the §4.2 setup table: accuracy, rho, BWT and FWT over seeds, and the paper number of the setup', () => {
    const pmnist = runs.map((r) => ({
      ...r,
      config: { ...r.config, protocol: { ...r.config.protocol, experiment: 'pmnist' } },
    }));
    const rows = setupRows(table1Data(pmnist));
    assert.deepEqual(
      rows.map((r) => r.approach),
      ['Random', 'Joint', 'SGD', 'HAT'],
    );
    const hat = rows.find((r) => r.approach === 'HAT')!;
    // A<=3 75% and 76.667% (population std 0.833); rho<=3 -0.2 and -0.4; BWT -0.075 and 0; FWT -0.0667 and -0.1
    assert.equal(hat['A<=3 %'], '75.8 (0.8)');
    assert.equal(hat['rho<=3'], '-0.300 (0.100)');
    assert.equal(hat['rank<=3'], 1);
    assert.equal(hat.BWT, '-0.038 (0.038)');
    assert.equal(hat.FWT, '-0.083 (0.017)');
    assert.equal(hat.paper, 'A<=10 98.6%');
    assert.equal(rows.find((r) => r.approach === 'SGD')!.paper, '');
    assert.equal(rows.find((r) => r.approach === 'Joint')!['rho<=3'], '', 'references have no rho');
  });

  test("our order of the methods against the paper's: Spearman over the approaches both have", () => {
    assert.equal(paperRankCorrelation(table1Data(runs)), undefined, 'two approaches are too few');
    const ewc = (rhoT: number) =>
      [0, 1].map((seed) =>
        fake({
          approach: 'ewc',
          seed,
          acc: [
            [0.9, 0, 0],
            [0.9, 0.9, 0],
            [0.9, 0.9, 0.9],
          ],
          rho: [0, -0.1, rhoT],
        }),
      );
    // ours at t = 3: SGD -0.7, HAT -0.3; the paper at t = 8: SGD -0.66, EWC -0.25, HAT -0.06
    assert.deepEqual(paperRankCorrelation(table1Data([...runs, ...ewc(-0.5)])), { n: 3, spearman: 1 });
    // EWC above HAT: ranks (1, 3, 2) against (1, 2, 3), 1 - 6·2/24
    const swapped = paperRankCorrelation(table1Data([...runs, ...ewc(-0.2)]))!;
    close(swapped.spearman, 0.5, 'one swap of three', 1e-12);
  });

  test('Fig. 3 curves: the methods only, worst last rho first, with their 95% CI', () => {
    const curves = forgettingCurves(runs);
    assert.deepEqual(
      curves.map((c) => c.label),
      ['SGD', 'HAT'],
    );
    // two seeds: t(0.975, 1) = 12.706; sample std of (-0.5, -0.7) = 0.1414
    close(curves[0].points[1].ci, (12.706 * Math.SQRT2 * 0.1) / Math.SQRT2, 'SGD rho<=2 CI', 1e-3);
  });
});

describe('robustness grid (Fig. 4)', () => {
  const cell = (smax: number, c: number, rhoT: number, extra: Partial<Fake> = {}) =>
    fake({
      approach: 'hat',
      tag: `hat-smax${smax}-c${c}`,
      parameters: { smax, c },
      seed: 0,
      acc: [
        [1, 0],
        [1, 1],
      ],
      rho: [0, rhoT],
      ...extra,
    });
  const runs = [
    cell(25, 0.1, -0.3),
    cell(400, 0.1, -0.1),
    cell(25, 0.75, -0.2),
    // a HAT run with another parameter changed, and one with a gate log, are not cells
    cell(400, 0.75, -0.9, { parameters: { smax: 400, c: 0.75, clipNorm: 1 } }),
    cell(400, 0.75, -0.9, { extras: { gateLog: {} } }),
    fake({
      approach: 'sgd',
      seed: 0,
      acc: [
        [1, 0],
        [0.5, 1],
      ],
      rho: [0, -0.5],
    }),
  ];

  test('cells are HAT runs differing from the defaults in smax and c only', () => {
    assert.deepEqual(runs.map(isRobustnessCell), [true, true, true, false, false, false]);
  });

  test('z[c][smax] is rho<=T of the cell; cells not run are empty', () => {
    const g = hyperGrid(runs);
    assert.equal(g.metric, 'rho');
    assert.deepEqual(g.smax, [25, 400]);
    assert.deepEqual(g.c, [0.1, 0.75]);
    assert.deepEqual(g.z, [
      [-0.3, -0.1],
      [-0.2, null],
    ]);
    assert.deepEqual(hyperGridRows(g), [
      { c: 0.1, 'smax 25': -0.3, 'smax 400': -0.1 },
      { c: 0.75, 'smax 25': -0.2, 'smax 400': null },
    ]);
  });

  test('cells compare on the seeds they share: the default cell, a Table 1 row too, has more', () => {
    const withDefault = [
      ...runs,
      cell(400, 0.75, -0.4, { tag: 'hat' }),
      cell(400, 0.75, -0.6, { tag: 'hat', seed: 1 }),
      cell(25, 0.1, -0.5, { seed: 2 }), // a seed only one cell has
    ];
    const g = hyperGrid(withDefault);
    assert.deepEqual(g.seeds, [0]);
    assert.deepEqual(g.z, [
      [-0.3, -0.1],
      [-0.2, -0.4],
    ]);
    // no seed in common: each cell over its own
    const apart = hyperGrid([
      cell(25, 0.1, -0.3),
      cell(400, 0.1, -0.1, { seed: 1 }),
      cell(400, 0.1, -0.3, { seed: 2 }),
    ]);
    assert.deepEqual(apart.seeds, [0, 1, 2]);
    assert.deepEqual(apart.z, [[-0.3, -0.2]]);
  });
});

describe('compression (Fig. 7)', () => {
  const log = (epochs: [number, number, number][]) => ({
    compression: {
      epochs: epochs.map(([epoch, compression, validAccuracy]) => ({
        task: 0,
        epoch,
        compression,
        validAccuracy,
        validLoss: 0,
      })),
    },
  });
  const runs = [
    fake({
      approach: 'hat',
      tag: 'hat-c1.5',
      seed: 10,
      acc: [[0.97]],
      tasks: ['MNIST'],
      bestEpoch: 2,
      extras: log([
        [0, 100, 0.1],
        [1, 20, 0.9],
        [2, 1.25, 0.96],
        [3, 1, 0.95],
      ]),
    }),
    fake({
      approach: 'sgd',
      seed: 10,
      acc: [[0.99]],
      tasks: ['MNIST'],
      bestEpoch: 1,
      extras: log([
        [0, 100, 0.1],
        [1, 100, 0.985],
      ]),
    }),
    // a multi-task run with a log is not a compression series
    fake({
      approach: 'hat',
      seed: 10,
      acc: [
        [0.9, 0],
        [0.9, 0.9],
      ],
      extras: log([[0, 100, 0.1]]),
    }),
  ];

  test("the kept model is the best validation epoch's; SGD of the same task and protocol is the reference", () => {
    const s = compressionSeries(runs);
    assert.equal(s.length, 1);
    assert.deepEqual(s[0].final, { epoch: 2, compression: 1.25, validAccuracy: 0.96, testAccuracy: 0.97 });
    assert.equal(s[0].sgdValidAccuracy, 0.985);
    assert.deepEqual(compressionRows(s), [
      {
        dataset: 'MNIST',
        epochs: 3,
        'weights kept %': 1.25,
        'valid acc % (step gates)': 96,
        'test acc % (step gates)': 97,
        'SGD valid acc %': 98.5,
        'paper: weights kept %': 1,
      },
    ]);
  });
});

describe('capacity and reuse (Figs. 5 and 6, hat capacity)', () => {
  const layers: LayerSpec[] = [
    { name: 'fc1', kind: 'dense', inputs: 3, units: 4, dropout: 0, pool: false },
    { name: 'fc2', kind: 'dense', inputs: 4, units: 2, dropout: 0, pool: false },
  ];
  const gates = [
    [
      [0.9, 0.8, 0.1, 0],
      [1, 0],
    ],
    [
      [1, 0.2, 0.7, 0],
      [0.6, 0.9],
    ],
  ];

  test('weight reuse counts the weights both tasks use, relative to the earlier task (Fig. 6)', () => {
    // task 1: fc1 2 units x 3 inputs + fc2 1 unit x 2 inputs = 8 weights; shared: fc1 1 x 3 + fc2 1 x 1 = 4
    const m = reuseMatrix(layers, gates);
    assert.equal(m[0][1], 50);
    assert.equal(m[1][0], null);
    assert.equal(m[0][0], null);
  });

  test('capacity table: cumulative usage per layer after each task', () => {
    const rows = usagePerTaskRows(layers, gates, ['a', 'b']);
    assert.equal(rows[0]['fc1 %'], 50); // 2 of 4 units x 3 inputs
    assert.equal(rows[1]['fc1 %'], 75); // units 0, 1, 2
    assert.equal(rows[1]['fc2 %'], 75); // 2 units x 3 active inputs of 4
  });

  test('units per layer: each task, all tasks, free', () => {
    const u = unitUsage(layers, gates);
    assert.deepEqual(u[0], { layer: 'fc1', units: 4, perTask: [0.5, 0.5], used: 0.75, free: 0.25 });
    assert.deepEqual(u[1], { layer: 'fc2', units: 2, perTask: [0.5, 1], used: 1, free: 0 });
  });

  test('gate logs round-trip through their byte encoding within 1/510', () => {
    const g = [0, 0.25, 0.5, 0.999, 1];
    decodeGates(encodeGates(g)).forEach((v, i) => assert.ok(Math.abs(v - g[i]) <= 1 / 510 + 1e-12));
  });
});

describe('mechanism and statistics', () => {
  test('Fig. 2 curves: s = smax is narrow, compensation is wide and as high as s = smax at 0', () => {
    const c = gradientAnnealingCurves(6, 100);
    const zero = c.e.findIndex((e) => Math.abs(e) < 1e-9);
    const two = c.e.findIndex((e) => Math.abs(e - 2) < 1e-9);
    assert.ok(Math.abs(c.constantOne[zero] - 25) < 1e-9);
    assert.ok(Math.abs(c.constantSmax[zero] - 150) < 1e-9);
    assert.ok(Math.abs(c.compensated[two] - 600 * sigmoidPrime(2)) < 1e-9);
    assert.ok(c.constantSmax[two] < c.constantOne[two] / 10, 'narrow');
    assert.ok(c.annealed[zero] > c.constantOne[zero] && c.annealed[zero] < c.constantSmax[zero]);
  });

  test('statistics: t-based 95% confidence interval, sample and population std', () => {
    const s = stat([1, 2, 3]);
    assert.equal(s.mean, 2);
    assert.equal(s.std, 1);
    close(s.popStd, Math.sqrt(2 / 3), 'population std');
    assert.ok(Math.abs(s.ci - 4.303 / Math.sqrt(3)) < 1e-9);
    assert.equal(stat([5]).ci, 0);
  });

  test('figure html: non-finite numbers become null and no script end tag leaks from the data', () => {
    const html = figureHtml(
      { data: [{ type: 'scatter', x: [1, 2], y: [NaN, Infinity], name: '</script><b>' }], layout: {} },
      'fig-x',
    );
    assert.match(html, /"y":\[null,null\]/);
    assert.equal(html.match(/<\/script>/g)?.length, 1);
  });
});

/**
 * The one run pipeline: callbacks see the documented sequence of events and can keep extras across a
 * resume; references are decided by approach wherever results are read (also with a custom tag); result
 * files of another format version are refused clearly; the figure and table modules load without
 * TensorFlow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { byExperimentAndSeed } from '../src/analysis/summary';
import { families, forgettingCurves } from '../src/figures/index';
import { loadRuns } from '../src/runs/loader';
import { RESULT_FORMAT, readResult } from '../src/runs/result-file';
import { type RunOptions, runExperiment } from '../src/runs/run';
import { type Callback } from '../src/training/callbacks';
import { backend } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'hat-pipeline-'));
// 130 training samples in batches of 64: 3 batches per epoch
const tiny = (resDir: string, extra: Partial<RunOptions> = {}): RunOptions => ({
  experiment: 'mnist2',
  approach: 'hat',
  seed: 4,
  hidden: [16],
  maxTrain: 130,
  maxTest: 50,
  train: { nepochs: 2 },
  resDir,
  progress: 'quiet',
  resume: false,
  ...extra,
});

/** A callback that writes down every event, and keeps a counter in the result file's extras. */
function recorder(events: string[]): Callback {
  let epochs = 0;
  return {
    key: 'recorder',
    onRunStart: (e) => void events.push(`runStart first=${e.firstTask}`),
    onTaskStart: (e) => void events.push(`taskStart ${e.t} data=${e.data ? e.data.train.n : '-'}`),
    onEpochStart: (e) => void events.push(`epochStart ${e.t}/${e.epoch} batches=${e.batches}`),
    onBatchEnd: (e) => void events.push(`batchEnd ${e.batch}/${e.batches}`),
    onEpochEnd: (e) => {
      epochs++;
      events.push(`epochEnd ${e.t}/${e.log.epoch}`);
    },
    onTaskEnd: (e) => void events.push(`taskEnd ${e.t} row=${e.accuracy.length}`),
    onRunEnd: () => void events.push('runEnd'),
    extras: () => ({ epochs }),
    resume: (x) => {
      epochs = (x as { epochs: number }).epochs;
      events.push(`resume epochs=${epochs}`);
    },
  };
}

test('callbacks receive the documented sequence of events; their extras land in the result file', async () => {
  await backend();
  const events: string[] = [];
  const { result, approach } = await runExperiment(tiny(tmp(), { callbacks: [recorder(events)] }));
  approach.dispose();
  const epoch = (t: number, e: number) => [
    `epochStart ${t}/${e} batches=3`,
    'batchEnd 1/3',
    'batchEnd 2/3',
    'batchEnd 3/3',
    `epochEnd ${t}/${e}`,
  ];
  const task = (t: number, n: number) => [
    `taskStart ${t} data=${n}`,
    ...epoch(t, 1),
    ...epoch(t, 2),
    `taskEnd ${t} row=2`,
  ];
  assert.deepEqual(events, ['runStart first=0', ...task(0, 130), ...task(1, 130), 'runEnd']);
  assert.deepEqual(result.extras.recorder, { epochs: 4 });

  // a predictor that does not train: task events without data, no epochs
  const randomEvents: string[] = [];
  (await runExperiment(tiny(tmp(), { approach: 'random', callbacks: [recorder(randomEvents)] }))).approach.dispose();
  assert.deepEqual(randomEvents, [
    'runStart first=0',
    'taskStart 0 data=-',
    'taskEnd 0 row=2',
    'taskStart 1 data=-',
    'taskEnd 1 row=2',
    'runEnd',
  ]);
});

test('a resumed run starts at its first unfinished task and gives callbacks their extras back', async () => {
  await backend();
  const dir = tmp();
  const stop: Callback = {
    onEpochEnd: (e) => {
      if (e.t === 1) throw new Error('simulated interruption');
    },
  };
  await assert.rejects(runExperiment(tiny(dir, { callbacks: [recorder([]), stop] })), /simulated interruption/);
  const events: string[] = [];
  const { result, approach } = await runExperiment(tiny(dir, { resume: true, callbacks: [recorder(events)] }));
  approach.dispose();
  assert.deepEqual(events.slice(0, 3), ['resume epochs=2', 'runStart first=1', 'taskStart 1 data=130']);
  assert.deepEqual(result.extras.recorder, { epochs: 4 }, 'two epochs before the interruption, two after');
});

test('a joint run with a custom tag is a reference everywhere: forgetting ratios, tables, figures', async () => {
  await backend();
  const dir = tmp();
  for (const [approach, tag] of [
    ['random', 'random-mine'],
    ['joint', 'joint-mine'],
    ['sgd', undefined],
  ] as const) {
    (await runExperiment(tiny(dir, { approach, tag, hidden: [8] }))).approach.dispose();
  }
  const runs = loadRuns(dir);
  const sgd = runs.find((r) => r.config.approach === 'sgd')!;
  assert.ok(sgd.forgetting, 'the tagged references give the forgetting ratio');
  assert.match(sgd.forgetting.references.joint, /mnist2_joint-mine_4\.json$/);
  assert.deepEqual(
    byExperimentAndSeed(runs).map((r) => r.config.tag),
    ['random-mine', 'joint-mine', 'sgd'],
    'references first in tables',
  );
  assert.deepEqual(
    forgettingCurves(runs).map((c) => c.approach),
    ['sgd'],
    'references are not curves',
  );
  assert.equal(families(runs)[0].hasReferences, true);
  const table = spawnSync(path.join(ROOT, 'bin', 'hat'), ['table', '--res-dir', dir], { encoding: 'utf8' });
  assert.equal(table.status, 0, table.stderr);
  const rows = table.stdout.split('\n').filter((l) => l.startsWith('mnist2'));
  assert.deepEqual(
    rows.map((l) => l.split(/\s+/)[1]),
    ['random-mine', 'joint-mine', 'sgd'],
  );
});

test('result files of another format version are refused with a message naming the file and what to do', () => {
  const dir = tmp();
  const old = path.join(dir, 'mnist2_hat_0.json');
  fs.writeFileSync(old, JSON.stringify({ format: 'hat-ts/run@1', status: 'complete' }));
  assert.throws(
    () => readResult(old),
    new RegExp(
      `mnist2_hat_0\\.json is a result file of another hat-ts version \\(format hat-ts/run@1; this version reads ${RESULT_FORMAT}\\)\\. Re-run it`,
    ),
  );
  const garbage = path.join(dir, 'x.json');
  fs.writeFileSync(garbage, '{"format": 3');
  assert.throws(() => readResult(garbage), /x\.json is not a readable JSON result file/);
  const problems: string[] = [];
  assert.deepEqual(loadRuns(dir, { onProblem: (_f, m) => problems.push(m) }), []);
  assert.equal(problems.length, 1, 'the loader reports the old file and skips the non-result JSON');
});

test('the figure, table and result-loading modules load without TensorFlow', () => {
  const script = [
    "require('./src/figures/index');",
    "require('./src/analysis/summary');",
    "require('./src/runs/loader');",
    "const tf = Object.keys(require.cache).filter((k) => k.includes('@tensorflow'));",
    'process.stdout.write(JSON.stringify(tf));',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
});

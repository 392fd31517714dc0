/**
 * Small results for every notebook, in seconds: `tsx scripts/notebook-fixtures.ts OUT_DIR`, then
 * `HAT_RES_DIR=OUT_DIR npm run report` (or `python scripts/report.py --res-dir OUT_DIR`). The notebook tests
 * use it. The same result files as `hat run` writes, on a tiny protocol: permuted MNIST, 3 tasks, 300
 * training samples per task, MLP 64-64, 1-2 epochs; a gate log; compression on MNIST (and Fashion-MNIST
 * when found in the data folders) with a tiny AlexNet budget.
 */
import * as path from 'node:path';
import { TABLE1_RUNS } from '../src/approaches/catalog';
import { availableDatasets, dataDirs } from '../src/data/datasets';
import { type RunOptions, runExperiment } from '../src/runs/run';

async function run(opts: RunOptions): Promise<void> {
  (await runExperiment(opts)).approach.dispose();
}

export async function makeNotebookFixtures(out: string): Promise<void> {
  const common = {
    experiment: 'pmnist' as const,
    tasks: 3,
    maxTrain: 300,
    maxTest: 200,
    hidden: [64, 64],
    train: { nepochs: 1 },
    progress: 'quiet' as const,
    resume: false,
  };
  const runs = path.join(out, 'runs');
  for (const seed of [0, 1]) for (const approach of TABLE1_RUNS) await run({ ...common, approach, seed, resDir: runs });
  const grid = path.join(out, 'grid');
  for (const approach of ['random', 'joint']) await run({ ...common, approach, seed: 0, resDir: grid });
  for (const smax of [25, 400])
    for (const c of [0.1, 0.75])
      await run({ ...common, approach: 'hat', seed: 0, parameters: { smax, c }, resDir: grid });
  await run({
    ...common,
    approach: 'hat',
    seed: 0,
    train: { nepochs: 2 },
    monitor: ['gates'],
    tag: 'hat-gates',
    resDir: path.join(out, 'usage'),
  });
  const present = new Set(availableDatasets(dataDirs()).present.map((d) => d.name));
  const compression = {
    experiment: 'mixture' as const,
    tasks: 1,
    seed: 0,
    maxTrain: 200,
    maxTest: 100,
    train: { nepochs: 2 },
    monitor: ['compression' as const],
    progress: 'quiet' as const,
    resume: false,
    resDir: path.join(out, 'compression'),
  };
  for (const dataset of ['mnist', ...(present.has('fashion-mnist') ? ['fashion-mnist'] : [])]) {
    await run({
      ...compression,
      datasets: [dataset],
      approach: 'hat',
      parameters: { c: 1.5, embeddingInit: 'uniform', evalScale: 10000 },
    });
    await run({ ...compression, datasets: [dataset], approach: 'sgd' });
  }
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: tsx scripts/notebook-fixtures.ts OUT_DIR\n');
    process.exit(2);
  }
  const started = Date.now();
  makeNotebookFixtures(path.resolve(out)).then(
    () => process.stderr.write(`notebook fixtures in ${out} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`),
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}

/**
 * Small results for every notebook, in seconds: `tsx scripts/notebook-fixtures.ts OUT_DIR`, then
 * `HAT_RES_DIR=OUT_DIR npm run report` (or `python scripts/report.py --res-dir OUT_DIR`). The notebook tests
 * use it. Same files as the CLI and `npm run monitor` write, on a tiny protocol: permuted MNIST, 3 tasks,
 * 300 training samples per task, MLP 64-64, 1-2 epochs; compression on MNIST (and Fashion-MNIST when found
 * in the data folders) with a tiny AlexNet budget.
 */
import * as path from 'node:path';
import { TABLE1_APPROACHES } from '../src/approaches/index';
import { availableDatasets, dataDirs } from '../src/data/datasets';
import { compressionFile, monitorFile, runCapacityMonitor, runCompression } from '../src/monitor';
import { createProgress } from '../src/progress';
import { runExperiment } from '../src/run';

export async function makeNotebookFixtures(out: string): Promise<void> {
  const quiet = createProgress('quiet');
  const common = { experiment: 'pmnist' as const, tasks: 3, maxTrain: 300, maxTest: 200, hidden: [64, 64], train: { nepochs: 1 }, progress: quiet, resume: false };
  const runs = path.join(out, 'runs');
  for (const seed of [0, 1]) {
    for (const approach of TABLE1_APPROACHES) {
      (await runExperiment({ ...common, approach, seed, resDir: runs })).approach.dispose();
    }
  }
  const grid = path.join(out, 'grid');
  for (const approach of ['random', 'joint']) (await runExperiment({ ...common, approach, seed: 0, resDir: grid })).approach.dispose();
  for (const smax of [25, 400]) for (const c of [0.1, 0.75]) {
    (await runExperiment({ ...common, approach: 'hat', seed: 0, parameters: [`smax=${smax}`, `c=${c}`], resDir: grid })).approach.dispose();
  }
  await runCapacityMonitor({ experiment: 'pmnist', seed: 0, tasks: 3, maxTrain: 300, maxTest: 200, hidden: [64, 64], train: { nepochs: 2 }, file: monitorFile(out, 'pmnist', 0), progress: quiet });
  const present = new Set(availableDatasets(dataDirs()).present.map((d) => d.name));
  const tasks = ['MNIST', ...(present.has('fashion-mnist') ? ['FashionMNIST'] : [])];
  for (const task of tasks) {
    await runCompression({ task, seed: 0, maxTrain: 200, maxTest: 100, train: { nepochs: 2 }, file: compressionFile(out, task, 0), progress: quiet });
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

/**
 * Live fallbacks: small experiments (seconds to a minute on 2 CPU cores) a notebook runs when the results it
 * needs are missing, through the same `runExperiment` as the command line.
 */
import { TABLE1_RUNS } from '../approaches/catalog';
import type { ExperimentName } from '../data/experiments';
import { type RunOptions, runExperiment } from '../runs/run';
import type { RunResult } from '../runs/result-file';
import { loadNotebookRuns } from './project';

/** The protocol of every live fallback: permuted MNIST, few tasks, few samples, small MLP, 2 epochs. */
export const FALLBACK = {
  experiment: 'pmnist' as ExperimentName,
  tasks: 3,
  maxTrain: 1000,
  maxTest: 500,
  hidden: [100, 100],
  nepochs: 2,
  seeds: [0, 1],
};

async function fallbackRun(
  runDir: string,
  approach: string,
  seed: number,
  extra: Partial<RunOptions> = {},
): Promise<RunResult> {
  const { result, approach: a } = await runExperiment({
    experiment: FALLBACK.experiment,
    approach,
    seed,
    tasks: FALLBACK.tasks,
    maxTrain: FALLBACK.maxTrain,
    maxTest: FALLBACK.maxTest,
    hidden: FALLBACK.hidden,
    train: { nepochs: FALLBACK.nepochs },
    resDir: runDir,
    resume: false,
    progress: 'quiet',
    ...extra,
  });
  a.dispose();
  return result;
}

const same = (a: RunResult, b: RunResult) =>
  a.config.tag === b.config.tag && a.config.protocol.seed === b.config.protocol.seed;

/** Every approach of Table 1 and the references, for the fallback seeds (forgetting figure and table). */
export async function fallbackForgetting(
  runDir: string,
  approaches: readonly string[] = TABLE1_RUNS,
): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (const seed of FALLBACK.seeds) for (const a of approaches) out.push(await fallbackRun(runDir, a, seed));
  return loadNotebookRuns(runDir, { includeNotebookRuns: true }).filter((r) => out.some((o) => same(o, r)));
}

/** A small (smax, c) grid of HAT on seed 0, with its references. */
export async function fallbackGrid(runDir: string, smax = [25, 100, 400], c = [0.1, 0.75, 2.5]): Promise<RunResult[]> {
  for (const a of ['random', 'joint']) await fallbackRun(runDir, a, 0);
  for (const s of smax) for (const cv of c) await fallbackRun(runDir, 'hat', 0, { parameters: { smax: s, c: cv } });
  return loadNotebookRuns(runDir, { includeNotebookRuns: true });
}

/** HAT with the per-epoch gate log on the fallback protocol (4 tasks, 3 epochs). */
export function fallbackMonitor(runDir: string): Promise<RunResult> {
  return fallbackRun(runDir, 'hat', 0, { tasks: 4, train: { nepochs: 3 }, monitor: ['gates'], tag: 'hat-gates' });
}

/**
 * A single-task compression run on the first permuted-MNIST task with the fast MLP (400-400, 5,000 images,
 * 10 epochs, about 10 s), and plain SGD on the same task: the trend of Fig. 7 (fewer weights kept epoch after
 * epoch, accuracy rising), not its AlexNet numbers.
 */
export async function fallbackCompression(runDir: string): Promise<RunResult[]> {
  const common: Partial<RunOptions> = {
    tasks: 1,
    maxTrain: 5000,
    maxTest: 1000,
    hidden: [400, 400],
    train: { nepochs: 10 },
    monitor: ['compression'],
  };
  const hat = await fallbackRun(runDir, 'hat', 0, {
    ...common,
    parameters: { c: 1.5, embeddingInit: 'uniform', evalScale: 10000 },
  });
  const sgd = await fallbackRun(runDir, 'sgd', 0, common);
  return [hat, sgd];
}

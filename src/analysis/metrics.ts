/**
 * The paper's metrics (spec §7): forgetting ratio against the random and joint references, its mean over
 * the tasks learnt so far, average accuracy, and the statistics over seeds. No TensorFlow.
 */

/** rho[t][u] = (acc[t][u] - A_R[u]) / (A_J[t][u] - A_R[u]) - 1 for u <= t. */
export function forgettingRatios(acc: number[][], randomAcc: number[], jointAcc: number[][]): number[][] {
  return acc.map((row, t) =>
    row.slice(0, t + 1).map((a, u) => {
      const r = randomAcc[u];
      const j = jointAcc[t]?.[u];
      if (j === undefined || r === undefined)
        throw new Error(`forgetting ratio: no reference for task ${u} after ${t + 1} tasks`);
      return (a - r) / (j - r) - 1;
    }),
  );
}

/** Mean of the first t+1 entries of every row t: rho^{<=t} (or A^{<=t} for an accuracy matrix). */
export function meanUpTo(matrix: number[][]): number[] {
  return matrix.map((row, t) => row.slice(0, t + 1).reduce((a, b) => a + b, 0) / (t + 1));
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n-1); 0 for a single value. */
export function std(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/** Population standard deviation (ddof 0), as the paper's script computes Table 1's (numpy's default). */
export function populationStd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
}

/**
 * Backward transfer (Lopez-Paz & Ranzato 2017, "Gradient episodic memory"): mean over u < T-1 of
 * acc[T-1][u] - acc[u][u], how much learning the later tasks changed the accuracy of the earlier ones
 * (negative: forgetting). T = the rows of `acc` (tasks learnt); NaN with fewer than two.
 */
export function backwardTransfer(acc: number[][]): number {
  const T = acc.length;
  if (T < 2) return NaN;
  return mean(acc.slice(0, T - 1).map((row, u) => acc[T - 1][u] - row[u]));
}

/**
 * Forward transfer, our variant: mean over u of acc[u][u] - joint[u][u], how well each task is learnt when it
 * comes, relative to joint training on tasks 0..u of the same seed (0: as well; negative: worse, e.g. capacity
 * frozen or held by a penalty; positive: earlier tasks helped). Lopez-Paz & Ranzato's FWT compares a task's
 * accuracy *before* it is learnt with a random network's, which means nothing here: the heads of tasks not yet
 * learnt are untrained (one head per task). NaN when the joint run has fewer tasks.
 */
export function forwardTransfer(acc: number[][], jointAcc: number[][]): number {
  if (!acc.length || jointAcc.length < acc.length) return NaN;
  return mean(acc.map((row, u) => row[u] - jointAcc[u][u]));
}

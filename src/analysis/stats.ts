/** Statistics over seeds (spec §7): mean, standard deviations and the 95% confidence interval of the mean. */
import { mean, populationStd, std } from './metrics';

const T975 = [
  NaN,
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

/** Two-sided 95% Student-t quantile t_{0.975, df} (1.96 beyond 30 degrees of freedom). */
export function tQuantile975(df: number): number {
  if (df < 1) return NaN;
  return df < T975.length ? T975[df] : 1.96;
}

export interface Stat {
  mean: number;
  /** Sample standard deviation (n−1). */
  std: number;
  /** Population standard deviation (n), as the paper's Table 1 script computes it. */
  popStd: number;
  /** Half-width of the 95% confidence interval, t_{0.975,n-1} std / sqrt(n) (0 for one value). */
  ci: number;
  n: number;
}

export function stat(xs: number[]): Stat {
  const n = xs.length;
  const s = std(xs);
  return {
    mean: n ? mean(xs) : NaN,
    std: s,
    popStd: populationStd(xs),
    ci: n > 1 ? (tQuantile975(n - 1) * s) / Math.sqrt(n) : 0,
    n,
  };
}

/** Ranks 1..n of xs in increasing order, ties given their average rank. */
export function averageRanks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(xs.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) ranks[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return ranks;
}

/** Spearman's rank correlation: Pearson's correlation of the average ranks (NaN below 2 values or without spread). */
export function spearman(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length !== ys.length) throw new Error('spearman: the two samples differ in length');
  const rx = averageRanks(xs);
  const ry = averageRanks(ys);
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  rx.forEach((r, i) => {
    sxy += (r - mx) * (ry[i] - my);
    sxx += (r - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  });
  return xs.length < 2 ? NaN : sxy / Math.sqrt(sxx * syy);
}

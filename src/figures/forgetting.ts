/**
 * Table 1 and Fig. 3 (spec §8.1, §8.2): the forgetting ratio of every approach, over seeds, beside the paper's.
 * `table1Data` is the one computation behind the notebook's table and figure and `hat results`. No TensorFlow.
 */
import { APPROACH_INFO, REFERENCE_CODE, TABLE1, isReference, referenceKind, variantOf } from '../approaches/catalog';
import { backwardTransfer, forwardTransfer } from '../analysis/metrics';
import { PAPER_SETUPS, PAPER_TABLE1, type PaperSetupNumber, type PaperTable1Row } from '../analysis/paper';
import { type Stat, spearman, stat } from '../analysis/stats';
import type { RunResult } from '../runs/result-file';
import { approachLabel } from './families';
import { COLORS, type PlotlyFigure, type Row } from './plotly';

/**
 * Is this run a row of Table 1: a reference, a method at its default parameters, or the reference code's
 * variant of IMM-mode and PNN? (Monitoring and hyperparameter-grid runs are not.)
 */
export function isTable1Run(r: RunResult): boolean {
  const { approach, tag } = r.config;
  if (r.extras.gateLog || r.extras.compression) return false;
  return tag === approach || tag === REFERENCE_CODE[approach]?.tag;
}

/** The row label of a run: the paper's label, and for IMM-mode and PNN which of the two behaviours it is. */
export function runLabel(r: RunResult): string {
  const variant = variantOf(r.config.approach, r.config.parameters);
  if (variant && isTable1Run(r))
    return `${APPROACH_INFO[r.config.approach].label} (${variant === 'reference' ? 'reference code' : 'paper method'})`;
  return approachLabel(r);
}

export interface Table1Row {
  label: string;
  approach: string;
  /** IMM-mode and PNN: the reference code's behaviour (the paper's published numbers) or the paper's method. */
  variant?: 'reference' | 'paper';
  reference: boolean;
  seeds: number[];
  /** Index t−1: rho^{<=t} over seeds (mean, sample and population std, 95% CI); empty without references. */
  rho: Stat[];
  /** A^{<=T} in %, backward transfer and forward transfer (against joint training of the same seed). */
  accuracy: Stat;
  bwt: Stat;
  fwt?: Stat;
  /** 1 = the least forgetting among the methods, at t = 2 and at the last task (ours), and the paper's. */
  rank2?: number;
  rankT?: number;
  paper?: PaperTable1Row;
  paperSetup?: PaperSetupNumber;
  paperRank8?: number;
}

export interface Table1Data {
  experiment: string;
  /** Tasks of the sequence (the last rho's t). */
  tasks: number;
  rows: Table1Row[];
}

/** Table 1 of one family of results (same experiment and protocol, several seeds): see Table1Row. */
export function table1Data(results: RunResult[]): Table1Data {
  const rows: Table1Row[] = [];
  const groups = new Map<string, RunResult[]>();
  for (const r of results.filter(isTable1Run)) groups.set(runLabel(r), [...(groups.get(runLabel(r)) ?? []), r]);
  const experiment = results[0]?.config.protocol.experiment ?? '';
  const T = Math.max(0, ...results.map((r) => r.accuracy.length));
  for (const [label, rs] of groups) {
    const r0 = rs[0];
    const { approach } = r0.config;
    const withRho = rs.filter((r) => r.forgetting);
    const n = Math.min(...withRho.map((r) => r.forgetting!.meanUpTo.length));
    const fwt = rs.flatMap((r) => {
      const joint = results.find(
        (j) => referenceKind(j.config.approach) === 'joint' && j.config.protocol.seed === r.config.protocol.seed,
      );
      return joint ? [forwardTransfer(r.accuracy, joint.accuracy)] : [];
    });
    const variant = variantOf(approach, r0.config.parameters);
    const paper =
      experiment === 'mixture' && variant !== 'paper' ? PAPER_TABLE1.find((p) => p.approach === approach) : undefined;
    rows.push({
      label,
      approach,
      ...(variant ? { variant } : {}),
      reference: isReference(approach),
      seeds: rs.map((r) => r.config.protocol.seed).sort((a, b) => a - b),
      rho:
        withRho.length && !isReference(approach)
          ? Array.from({ length: n }, (_, t) => stat(withRho.map((r) => r.forgetting!.meanUpTo[t])))
          : [],
      accuracy: stat(rs.map((r) => 100 * r.averageAccuracy[r.accuracy.length - 1])),
      bwt: stat(rs.map((r) => backwardTransfer(r.accuracy)).filter(Number.isFinite)),
      ...(fwt.length ? { fwt: stat(fwt.filter(Number.isFinite)) } : {}),
      ...(paper
        ? { paper, paperRank8: [...PAPER_TABLE1].sort((a, b) => b.rho8[0] - a.rho8[0]).indexOf(paper) + 1 }
        : {}),
      ...(variant !== 'paper' ? withSetup(experiment, approach) : {}),
    });
  }
  const rankBy = (key: 'rank2' | 'rankT', at: (r: Table1Row) => number | undefined) => {
    const methods = rows.filter((r) => at(r) !== undefined && Number.isFinite(at(r)));
    methods.sort((a, b) => at(b)! - at(a)!).forEach((r, i) => (r[key] = i + 1));
  };
  rankBy('rank2', (r) => r.rho[1]?.mean);
  rankBy('rankT', (r) => r.rho[T - 1]?.mean);
  // references first (random, then joint), then the paper's order of Table 1, then the rest; variants together
  const order = (r: Table1Row) => {
    const k = referenceKind(r.approach);
    if (k) return k === 'random' ? -2 : -1;
    const i = (TABLE1 as readonly string[]).indexOf(r.approach);
    return i < 0 ? TABLE1.length : i;
  };
  rows.sort(
    (a, b) => order(a) - order(b) || (a.variant ?? '').localeCompare(b.variant ?? '') || a.label.localeCompare(b.label),
  );
  return { experiment, tasks: T, rows };
}

function withSetup(experiment: string, approach: string): { paperSetup?: PaperSetupNumber } {
  const p = PAPER_SETUPS.find((x) => x.experiment === experiment && x.approach === approach);
  return p ? { paperSetup: p } : {};
}

/**
 * How closely our order of the methods at the last task follows the paper's at t = 8: Spearman's rank
 * correlation of our mean rho<=T and the paper's rho<=8 over the approaches both have (1: the same order).
 * Undefined below 3 such approaches.
 */
export function paperRankCorrelation(data: Table1Data): { n: number; spearman: number } | undefined {
  const both = data.rows.filter((r) => r.paper && Number.isFinite(r.rho[data.tasks - 1]?.mean));
  if (both.length < 3) return undefined;
  return {
    n: both.length,
    spearman: spearman(
      both.map((r) => r.rho[data.tasks - 1].mean),
      both.map((r) => r.paper!.rho8[0]),
    ),
  };
}

export interface ForgettingCurve {
  label: string;
  approach: string;
  seeds: number[];
  /** Index t-1: statistics of rho^{<=t} over seeds. */
  points: Stat[];
}

/** rho^{<=t} of every Table 1 method (random and joint, −1 and 0 by definition, left out), worst final rho first. */
export function forgettingCurves(results: RunResult[]): ForgettingCurve[] {
  return table1Data(results)
    .rows.filter((r) => !r.reference && r.rho.length)
    .map((r) => ({ label: r.label, approach: r.approach, seeds: r.seeds, points: r.rho }))
    .sort((a, b) => (a.points[a.points.length - 1]?.mean ?? 0) - (b.points[b.points.length - 1]?.mean ?? 0));
}

/**
 * Paper Fig. 3: rho^{<=t} vs t, 95% CI error bars, small jitter per approach, dashed line at 0; with
 * `paper`, the paper's rho^{<=2} and rho^{<=8} of the same approaches as open diamonds (all it publishes).
 */
export function forgettingFigure(
  curves: ForgettingCurve[],
  title = 'Forgetting ratio vs number of tasks (paper Fig. 3)',
  opts: { paper?: boolean } = {},
): PlotlyFigure {
  const k = curves.length;
  const colour = (i: number) => COLORS[i % COLORS.length];
  const data: Record<string, unknown>[] = curves.map((c, i) => ({
    type: 'scatter',
    mode: 'lines+markers',
    name: `${c.label} (n=${c.seeds.length})`,
    legendgroup: c.label,
    x: c.points.map((_, t) => t + 1 + (k > 1 ? (i - (k - 1) / 2) * (0.25 / k) : 0)),
    y: c.points.map((p) => p.mean),
    error_y: { type: 'data', array: c.points.map((p) => p.ci), visible: true },
    line: { color: colour(i), width: c.approach === 'hat' ? 3 : 1.5 },
    hovertemplate: `${c.label}<br>t=%{x:.0f}<br>rho=%{y:.3f}<extra></extra>`,
  }));
  let T = Math.max(1, ...curves.map((c) => c.points.length));
  if (opts.paper) {
    curves.forEach((c, i) => {
      const p = PAPER_TABLE1.find((x) => x.approach === c.approach);
      if (!p || c.label.endsWith('(paper method)')) return;
      data.push({
        type: 'scatter',
        mode: 'markers',
        name: `${c.label}, paper`,
        legendgroup: c.label,
        showlegend: false,
        x: [2, 8],
        y: [p.rho2[0], p.rho8[0]],
        marker: { symbol: 'diamond-open', size: 11, color: colour(i) },
        hovertemplate: `${c.label}, the paper<br>t=%{x}<br>rho=%{y:.2f}<extra></extra>`,
      });
    });
    T = Math.max(T, 8);
  }
  return {
    data,
    layout: {
      title: { text: title },
      xaxis: { title: { text: 'number of learned tasks t' }, dtick: 1, range: [0.5, T + 0.5] },
      yaxis: { title: { text: 'forgetting ratio rho<=t' } },
      height: 450,
      shapes: [
        { type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 0, y1: 0, line: { dash: 'dash', color: '#444', width: 1 } },
      ],
      legend: { orientation: 'v' },
      ...(opts.paper
        ? {
            annotations: [
              {
                xref: 'paper',
                yref: 'paper',
                x: 1,
                y: -0.18,
                showarrow: false,
                text: 'open diamonds: the paper (8 tasks, rho at t = 2 and 8 only)',
                font: { size: 10 },
              },
            ],
          }
        : {}),
    },
  };
}

/** "mean (std)" with the population std, as the paper's Table 1. */
const meanStd = (s: Stat | undefined, digits = 2): string =>
  !s || !Number.isFinite(s.mean) ? '' : `${s.mean.toFixed(digits)} (${s.popStd.toFixed(digits)})`;

/**
 * Table 1 beside the paper, one row per approach: ours at t = 2 and at the last task (mean (population std)
 * over seeds) with ranks among the methods, and the paper's rho<=2 and rho<=8 with its rank. The paper's
 * approaches without a run of ours appear too, so nothing is silently missing.
 */
export function table1Rows(data: Table1Data): Row[] {
  const T = data.tasks;
  const rows: Row[] = data.rows
    .filter((r) => !r.reference)
    .map((r) => ({
      approach: r.label,
      seeds: r.seeds.length,
      'ours rho<=2': meanStd(r.rho[1]),
      'rank<=2': r.rank2 ?? null,
      [`ours rho<=${T}`]: meanStd(r.rho[T - 1]),
      [`rank<=${T}`]: r.rankT ?? null,
      'paper rho<=2': r.paper ? `${r.paper.rho2[0].toFixed(2)} (${r.paper.rho2[1].toFixed(2)})` : '',
      'paper rho<=8': r.paper ? `${r.paper.rho8[0].toFixed(2)} (${r.paper.rho8[1].toFixed(2)})` : '',
      'paper rank': r.paperRank8 ?? null,
    }));
  if (data.experiment === 'mixture') {
    for (const p of PAPER_TABLE1) {
      if (!data.rows.some((r) => r.paper === p))
        rows.push({
          approach: `${APPROACH_INFO[p.approach].label} (not run)`,
          seeds: 0,
          'paper rho<=2': `${p.rho2[0].toFixed(2)} (${p.rho2[1].toFixed(2)})`,
          'paper rho<=8': `${p.rho8[0].toFixed(2)} (${p.rho8[1].toFixed(2)})`,
        });
    }
  }
  return rows;
}

/** The paper's number for a §4.2 setup as the tables show it: "A<=10 98.6%", "rho<=10 -0.09". */
export const paperSetupText = (p: PaperSetupNumber): string =>
  p.metric === 'accuracy' ? `A<=${p.tasks} ${p.value}%` : `rho<=${p.tasks} ${p.value.toFixed(2)}`;

/**
 * The §4.2 setups (pmnist, mnist2, cifar) beside the paper, one row per approach with references: final
 * average accuracy and rho<=T (mean (population std) over seeds), BWT and FWT, and the number the paper gives
 * for that setup (HAT's accuracy on pmnist and mnist2, HAT's and EWC's rho on cifar), with its task count.
 */
export function setupRows(data: Table1Data): Row[] {
  const T = data.tasks;
  return data.rows.map((r) => ({
    approach: r.label,
    seeds: r.seeds.length,
    [`A<=${T} %`]: meanStd(r.accuracy, 1),
    [`rho<=${T}`]: meanStd(r.rho[T - 1], 3),
    [`rank<=${T}`]: r.rankT ?? null,
    BWT: meanStd(r.bwt, 3),
    FWT: meanStd(r.fwt, 3),
    paper: r.paperSetup ? paperSetupText(r.paperSetup) : '',
  }));
}

/** Per-t mean (95% CI) of rho^{<=t}, one row per approach, plus the mean over t (spec §8.2). */
export function forgettingPerTaskRows(curves: ForgettingCurve[]): Row[] {
  return curves.map((c) => {
    const row: Row = { approach: c.label };
    c.points.forEach((p, t) => (row[`t=${t + 1}`] = `${p.mean.toFixed(3)} ± ${p.ci.toFixed(3)}`));
    row['mean over t'] = (c.points.reduce((a, p) => a + p.mean, 0) / c.points.length).toFixed(3);
    return row;
  });
}

/** Accuracy matrix of one result as rows (in %), for display. */
export function accuracyRows(r: RunResult, names = r.data.tasks.map((t) => t.name)): Row[] {
  return r.accuracy.map((row, t) => {
    const out: Row = { 'after task': `${t + 1}: ${names[t]}` };
    names.forEach((n, u) => (out[n] = u <= t ? Number((100 * row[u]).toFixed(1)) : null));
    return out;
  });
}

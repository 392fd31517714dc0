/** Fig. 3 and Table 1 (spec §8.1, §8.2): the forgetting ratio against the number of tasks. No TensorFlow. */
import { APPROACH_INFO, isReference } from '../approaches/catalog';
import { mean } from '../analysis/metrics';
import { PAPER_TABLE1, type PaperTable1Row } from '../analysis/paper';
import { type Stat, stat } from '../analysis/stats';
import type { RunResult } from '../runs/result-file';
import { approachLabel } from './families';
import { COLORS, type PlotlyFigure, type Row } from './plotly';

export interface ForgettingCurve {
  label: string;
  approach: string;
  seeds: number[];
  /** Index t-1: statistics of rho^{<=t} over seeds. */
  points: Stat[];
}

/** rho^{<=t} per approach (mean, std, 95% CI over seeds); random and joint (rho -1 and 0 by definition) left out. */
export function forgettingCurves(results: RunResult[]): ForgettingCurve[] {
  const byLabel = new Map<string, RunResult[]>();
  for (const r of results) {
    if (!r.forgetting || isReference(r.config.approach)) continue;
    const l = approachLabel(r);
    byLabel.set(l, [...(byLabel.get(l) ?? []), r]);
  }
  return [...byLabel.entries()]
    .map(([label, rs]) => {
      const T = Math.min(...rs.map((r) => r.forgetting!.meanUpTo.length));
      return {
        label,
        approach: rs[0].config.approach,
        seeds: rs.map((r) => r.config.protocol.seed),
        points: Array.from({ length: T }, (_, t) => stat(rs.map((r) => r.forgetting!.meanUpTo[t]))),
      };
    })
    .sort((a, b) => (a.points[a.points.length - 1]?.mean ?? 0) - (b.points[b.points.length - 1]?.mean ?? 0));
}

/** Paper Fig. 3: rho^{<=t} vs t, 95% CI error bars, small jitter per approach, dashed line at 0. */
export function forgettingFigure(
  curves: ForgettingCurve[],
  title = 'Forgetting ratio vs number of tasks (paper Fig. 3)',
): PlotlyFigure {
  const k = curves.length;
  const data = curves.map((c, i) => ({
    type: 'scatter',
    mode: 'lines+markers',
    name: `${c.label} (n=${c.seeds.length})`,
    x: c.points.map((_, t) => t + 1 + (k > 1 ? (i - (k - 1) / 2) * (0.25 / k) : 0)),
    y: c.points.map((p) => p.mean),
    error_y: { type: 'data', array: c.points.map((p) => p.ci), visible: true },
    line: { color: COLORS[i % COLORS.length], width: c.approach === 'hat' ? 3 : 1.5 },
    hovertemplate: `${c.label}<br>t=%{x:.0f}<br>rho=%{y:.3f}<extra></extra>`,
  }));
  const T = Math.max(1, ...curves.map((c) => c.points.length));
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
    },
  };
}

/** "mean (std)" with the population std, as the paper's Table 1. */
const meanStd = (s: Stat | undefined): string =>
  !s || !Number.isFinite(s.mean) ? '' : `${s.mean.toFixed(2)} (${s.popStd.toFixed(2)})`;

/**
 * Table 1 side by side with the paper: our rho^{<=2} and rho^{<=T} as "mean (std)" over seeds, and the
 * paper's rho^{<=2}, rho^{<=8}. Approaches of either side appear; sorted by the paper's order, ours after.
 */
export function table1Rows(curves: ForgettingCurve[]): Row[] {
  const T = Math.max(0, ...curves.map((c) => c.points.length));
  // the paper's rows are each approach at its default parameters (tag = id)
  const ours = new Map(curves.filter((c) => c.label === APPROACH_INFO[c.approach]?.label).map((c) => [c.approach, c]));
  const row = (name: string, c: ForgettingCurve | undefined, paper: PaperTable1Row | undefined): Row => ({
    approach: name,
    seeds: c ? c.seeds.length : null,
    'ours rho<=2': meanStd(c?.points[1]),
    [`ours rho<=${T}`]: meanStd(c?.points[T - 1]),
    'paper rho<=2': paper ? `${paper.rho2[0].toFixed(2)} (${paper.rho2[1].toFixed(2)})` : '',
    'paper rho<=8': paper ? `${paper.rho8[0].toFixed(2)} (${paper.rho8[1].toFixed(2)})` : '',
  });
  const rows = PAPER_TABLE1.map((p) => row(APPROACH_INFO[p.approach].label, ours.get(p.approach), p));
  const inPaper = new Set(PAPER_TABLE1.map((p) => p.approach));
  for (const c of curves)
    if (!(inPaper.has(c.approach) && ours.get(c.approach) === c)) rows.push(row(c.label, c, undefined));
  return rows;
}

/** Per-t mean (95% CI) of rho^{<=t}, one row per approach, plus the mean over t (spec §8.2). */
export function forgettingPerTaskRows(curves: ForgettingCurve[]): Row[] {
  return curves.map((c) => {
    const row: Row = { approach: c.label };
    c.points.forEach((p, t) => (row[`t=${t + 1}`] = `${p.mean.toFixed(3)} ± ${p.ci.toFixed(3)}`));
    row['mean over t'] = mean(c.points.map((p) => p.mean)).toFixed(3);
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

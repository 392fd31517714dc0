/**
 * The paper's figures and tables as data: Plotly figure specs ({data, layout}) and table rows, computed from
 * result files (src/results.ts), monitoring logs (src/monitor.ts) or analytically (Fig. 2). Pure functions,
 * no display: the notebooks hand the specs to src/notebook.ts, tests check the numbers.
 *
 *   Fig. 2  gradientAnnealingCurves / gradientAnnealingFigure      (spec §8.8, analytic)
 *   Fig. 3  forgettingCurves / forgettingFigure                    (spec §8.2)
 *   Tab. 1  table1Rows, PAPER_TABLE1                               (spec §8.1)
 *   Fig. 4  hyperGrid / hyperGridFigure                            (spec §8.4)
 *   Fig. 5  capacityFigure, usagePerTaskRows                       (spec §8.5)
 *   Fig. 6  reuseMatrix / reuseFigure                              (spec §8.6)
 *   Fig. 7  compressionFigure, compressionRows                     (spec §8.7)
 */
import { APPROACHES } from './approaches/index';
import { CompressionLog, MonitorLog } from './monitor';
import { LayerUsage, cumulativeMax, mean, std, totalUsage, weightUsage } from './metrics';
import { LayerSpec, alexnetConfig, mlpConfig } from './nets/network';
import { RunResult } from './results';

export interface PlotlyFigure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

export type Row = Record<string, string | number | null>;

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

// ---------------------------------------------------------------------------------------------------------
// statistics

const T975 = [NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** Two-sided 95% Student-t quantile t_{0.975, df} (1.96 beyond 30 degrees of freedom). */
export function tQuantile975(df: number): number {
  if (df < 1) return NaN;
  return df < T975.length ? T975[df] : 1.96;
}

export interface Stat {
  mean: number;
  std: number;
  /** Half-width of the 95% confidence interval, t_{0.975,n-1} std / sqrt(n) (0 for one value). */
  ci: number;
  n: number;
}

export function stat(xs: number[]): Stat {
  const n = xs.length;
  const s = std(xs);
  return { mean: n ? mean(xs) : NaN, std: s, ci: n > 1 ? (tQuantile975(n - 1) * s) / Math.sqrt(n) : 0, n };
}

// ---------------------------------------------------------------------------------------------------------
// naming and grouping of result files

/** Display name of a result: approach label (HAT, SGD-F, ...) plus its non-default parameters. */
export function approachLabel(r: RunResult): string {
  const def = APPROACHES[r.config.approach];
  const base = def?.label ?? r.config.approach;
  const suffix = r.config.tag.startsWith(r.config.approach) ? r.config.tag.slice(r.config.approach.length).replace(/^-/, '') : r.config.tag;
  return suffix ? `${base} ${suffix}` : base;
}

/** Results that differ only by seed and approach share a family (same experiment and protocol). */
export function familyKey(r: RunResult): string {
  const { seed: _seed, ...rest } = r.config.protocol;
  return JSON.stringify({ ...rest, hidden: r.config.network.hidden ?? null });
}

export interface Family {
  key: string;
  experiment: string;
  tasks: number;
  results: RunResult[];
  /** Every seed of the family has random and joint references. */
  hasReferences: boolean;
  description: string;
}

/** Groups results into families; most useful first (experiments in `prefer` order, then size). */
export function families(results: RunResult[], prefer: string[] = ['mixture', 'cifar', 'pmnist', 'mnist2']): Family[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of results) {
    const k = familyKey(r);
    const group = groups.get(k) ?? [];
    // the same run found in two folders counts once
    if (!group.some((o) => o.config.tag === r.config.tag && o.config.protocol.seed === r.config.protocol.seed)) group.push(r);
    groups.set(k, group);
  }
  const out: Family[] = [...groups.entries()].map(([key, rs]) => {
    const p = rs[0].config.protocol;
    const seeds = [...new Set(rs.map((r) => r.config.protocol.seed))];
    const hasReferences = seeds.every((s) => rs.some((r) => r.config.protocol.seed === s && r.config.approach === 'random') && rs.some((r) => r.config.protocol.seed === s && r.config.tag === 'joint'));
    const parts = [`${p.experiment}, ${p.tasks} tasks`, `seeds ${seeds.sort((a, b) => a - b).join(',')}`, `max ${p.train.nepochs} epochs`];
    if (p.maxTrain) parts.push(`max ${p.maxTrain} training samples per task`);
    if (rs[0].config.network.hidden) parts.push(`hidden ${rs[0].config.network.hidden.join('-')}`);
    return { key, experiment: p.experiment, tasks: p.tasks, results: rs, hasReferences, description: parts.join('; ') };
  });
  const rank = (e: string) => (prefer.indexOf(e) < 0 ? prefer.length : prefer.indexOf(e));
  return out.sort((a, b) => rank(a.experiment) - rank(b.experiment) || b.tasks - a.tasks || b.results.length - a.results.length);
}

// ---------------------------------------------------------------------------------------------------------
// Fig. 3 and Table 1: forgetting ratio

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
    if (!r.forgetting || r.config.approach === 'random' || r.config.tag === 'joint') continue;
    const l = approachLabel(r);
    byLabel.set(l, [...(byLabel.get(l) ?? []), r]);
  }
  return [...byLabel.entries()].map(([label, rs]) => {
    const T = Math.min(...rs.map((r) => r.forgetting!.meanUpTo.length));
    return {
      label, approach: rs[0].config.approach, seeds: rs.map((r) => r.config.protocol.seed),
      points: Array.from({ length: T }, (_, t) => stat(rs.map((r) => r.forgetting!.meanUpTo[t]))),
    };
  }).sort((a, b) => (a.points[a.points.length - 1]?.mean ?? 0) - (b.points[b.points.length - 1]?.mean ?? 0));
}

/** Paper Fig. 3: rho^{<=t} vs t, 95% CI error bars, small jitter per approach, dashed line at 0. */
export function forgettingFigure(curves: ForgettingCurve[], title = 'Forgetting ratio vs number of tasks (paper Fig. 3)'): PlotlyFigure {
  const k = curves.length;
  const data = curves.map((c, i) => ({
    type: 'scatter', mode: 'lines+markers', name: `${c.label} (n=${c.seeds.length})`,
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
      title: { text: title }, xaxis: { title: { text: 'number of learned tasks t' }, dtick: 1, range: [0.5, T + 0.5] },
      yaxis: { title: { text: 'forgetting ratio rho<=t' } }, height: 450,
      shapes: [{ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 0, y1: 0, line: { dash: 'dash', color: '#444', width: 1 } }],
      legend: { orientation: 'v' },
    },
  };
}

/** Paper Table 1 (mixture, mean (std) over seeds 0-9), rows sorted by rho^{<=8}. */
export const PAPER_TABLE1: { approach: string; rho2: [number, number]; rho8: [number, number] }[] = [
  { approach: 'LFL', rho2: [-0.73, 0.29], rho8: [-0.92, 0.08] },
  { approach: 'LWF', rho2: [-0.14, 0.13], rho8: [-0.8, 0.06] },
  { approach: 'SGD', rho2: [-0.2, 0.08], rho8: [-0.66, 0.03] },
  { approach: 'IMM-MODE', rho2: [-0.11, 0.08], rho8: [-0.49, 0.05] },
  { approach: 'SGD-F', rho2: [-0.2, 0.15], rho8: [-0.44, 0.06] },
  { approach: 'IMM-MEAN', rho2: [-0.12, 0.1], rho8: [-0.42, 0.04] },
  { approach: 'EWC', rho2: [-0.08, 0.06], rho8: [-0.25, 0.03] },
  { approach: 'PATHNET', rho2: [-0.09, 0.16], rho8: [-0.17, 0.23] },
  { approach: 'PNN', rho2: [-0.11, 0.1], rho8: [-0.11, 0.01] },
  { approach: 'HAT', rho2: [-0.02, 0.03], rho8: [-0.06, 0.01] },
];

const meanStd = (s: Stat | undefined): string => (!s || !Number.isFinite(s.mean) ? '' : `${s.mean.toFixed(2)} (${s.std.toFixed(2)})`);

/**
 * Table 1 side by side with the paper: our rho^{<=2} and rho^{<=T} as "mean (std)" over seeds, and the
 * paper's rho^{<=2}, rho^{<=8}. Approaches of either side appear; sorted by the paper's order, ours after.
 */
export function table1Rows(curves: ForgettingCurve[]): Row[] {
  const T = Math.max(0, ...curves.map((c) => c.points.length));
  const ours = new Map(curves.map((c) => [c.label.toUpperCase(), c]));
  const rows: Row[] = [];
  const seen = new Set<string>();
  const row = (name: string, c: ForgettingCurve | undefined, paper: (typeof PAPER_TABLE1)[number] | undefined): Row => ({
    approach: name,
    seeds: c ? c.seeds.length : null,
    'ours rho<=2': meanStd(c?.points[1]),
    [`ours rho<=${T}`]: meanStd(c?.points[T - 1]),
    'paper rho<=2': paper ? `${paper.rho2[0].toFixed(2)} (${paper.rho2[1].toFixed(2)})` : '',
    'paper rho<=8': paper ? `${paper.rho8[0].toFixed(2)} (${paper.rho8[1].toFixed(2)})` : '',
  });
  for (const p of PAPER_TABLE1) {
    const c = ours.get(p.approach);
    rows.push(row(p.approach, c, p));
    seen.add(p.approach);
  }
  for (const c of curves) if (!seen.has(c.label.toUpperCase())) rows.push(row(c.label, c, undefined));
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

// ---------------------------------------------------------------------------------------------------------
// Fig. 2 and the mechanism (analytic)

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
/** sigma'(x) = 1 / (2 (cosh x + 1)), stable for large |x|. */
export const sigmoidPrime = (x: number): number => {
  const a = Math.abs(x);
  if (a > 50) return Math.exp(-a);
  return 1 / (2 * (Math.cosh(x) + 1));
};

/** s of batch b (0-based) of B, paper form (spec §2.4). */
export function annealedS(b: number, B: number, smax: number): number {
  return B > 1 ? 1 / smax + ((smax - 1 / smax) * b) / (B - 1) : smax;
}

export interface AnnealingCurves {
  e: number[];
  constantOne: number[];
  constantSmax: number[];
  annealed: number[];
  compensated: number[];
}

/**
 * Cumulative gradient magnitude of the gate w.r.t. its embedding over one epoch of B batches with unit
 * upstream gradient (spec §8.8): (i) s=1: B sigma'(e); (ii) s=smax: B smax sigma'(smax e); (iii) annealed:
 * sum_b s_b sigma'(s_b e); (iv) annealed and compensated: B smax sigma'(e).
 */
export function gradientAnnealingCurves(smax: number, B = 100, points = 241, range = 6): AnnealingCurves {
  const e = Array.from({ length: points }, (_, i) => -range + (2 * range * i) / (points - 1));
  const s = Array.from({ length: B }, (_, b) => annealedS(b, B, smax));
  return {
    e,
    constantOne: e.map((x) => B * sigmoidPrime(x)),
    constantSmax: e.map((x) => B * smax * sigmoidPrime(smax * x)),
    annealed: e.map((x) => s.reduce((acc, sb) => acc + sb * sigmoidPrime(sb * x), 0)),
    compensated: e.map((x) => B * smax * sigmoidPrime(x)),
  };
}

export function gradientAnnealingFigure(smax: number, B = 100): PlotlyFigure {
  const c = gradientAnnealingCurves(smax, B);
  const line = (name: string, y: number[], color: string, dash?: string) => ({ type: 'scatter', mode: 'lines', name, x: c.e, y, line: { color, dash, width: 2 } });
  return {
    data: [
      line('(i) s = 1', c.constantOne, COLORS[0]),
      line(`(ii) s = smax = ${smax}`, c.constantSmax, COLORS[1]),
      line('(iii) annealed s', c.annealed, COLORS[2]),
      line('(iv) annealed + compensation', c.compensated, COLORS[3], 'dash'),
    ],
    layout: {
      title: { text: `Cumulative gate gradient over one epoch of ${B} batches, smax = ${smax} (paper Fig. 2)` },
      xaxis: { title: { text: 'embedding e' } }, yaxis: { title: { text: 'sum over batches of |d gate / d e|' }, type: 'log', exponentformat: 'power' }, height: 420,
    },
  };
}

/** The gate sigma(s e) against e for several s (how s turns a soft gate into a step). */
export function gateFigure(svalues: number[], range = 6): PlotlyFigure {
  const e = Array.from({ length: 241 }, (_, i) => -range + (2 * range * i) / 240);
  return {
    data: svalues.map((s, i) => ({ type: 'scatter', mode: 'lines', name: `s = ${s < 1 ? s.toPrecision(2) : s}`, x: e, y: e.map((x) => sigmoid(s * x)), line: { color: COLORS[i % COLORS.length] } })),
    layout: { title: { text: 'Gate a = sigma(s e) for increasing s' }, xaxis: { title: { text: 'embedding e' } }, yaxis: { title: { text: 'gate a' }, range: [-0.05, 1.05] }, height: 380 },
  };
}

/** s over the batches of an epoch (spec §2.4), repeated for a few epochs. */
export function annealingScheduleFigure(smax: number, batchesPerEpoch: number, epochs = 3): PlotlyFigure {
  const x: number[] = [];
  const y: number[] = [];
  for (let ep = 0; ep < epochs; ep++) for (let b = 0; b < batchesPerEpoch; b++) {
    x.push(ep * batchesPerEpoch + b + 1);
    y.push(annealedS(b, batchesPerEpoch, smax));
  }
  return {
    data: [{ type: 'scatter', mode: 'lines', name: 's', x, y, line: { color: COLORS[0] } }],
    layout: { title: { text: `Annealing of s from 1/smax to smax = ${smax} within every epoch (${batchesPerEpoch} batches)` }, xaxis: { title: { text: 'batch' } }, yaxis: { title: { text: 's' }, type: 'log' }, height: 340 },
  };
}

/** A heat map of a matrix (e.g. a weight-gradient mask 1 - min(A_out, A_in)). */
export function heatmapFigure(z: (number | null)[][], title: string, opts: { x?: (string | number)[]; y?: (string | number)[]; xTitle?: string; yTitle?: string; zmin?: number; zmax?: number; colorscale?: string; text?: boolean; height?: number } = {}): PlotlyFigure {
  const trace: Record<string, unknown> = { type: 'heatmap', z, colorscale: opts.colorscale ?? 'Viridis', zmin: opts.zmin, zmax: opts.zmax, hoverongaps: false };
  if (opts.x) trace.x = opts.x;
  if (opts.y) trace.y = opts.y;
  if (opts.text) {
    trace.text = z.map((row) => row.map((v) => (v === null || !Number.isFinite(v) ? '' : v.toFixed(Math.abs(v) < 1 ? 2 : 0))));
    trace.texttemplate = '%{text}';
  }
  return {
    data: [trace],
    layout: { title: { text: title }, xaxis: { title: { text: opts.xTitle ?? '' }, type: 'category' }, yaxis: { title: { text: opts.yTitle ?? '' }, type: 'category', autorange: 'reversed' }, height: opts.height ?? 420 },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Fig. 4: hyperparameter grid

export interface HyperGrid {
  smax: number[];
  c: number[];
  /** z[i][j]: metric for c[i], smax[j] (mean over seeds), null when not run. */
  z: (number | null)[][];
  metric: 'rho' | 'accuracy';
  tasks: number;
}

/** rho^{<=T} (or, without references, average accuracy A^{<=T} in %) of every HAT (smax, c) in a family. */
export function hyperGrid(results: RunResult[]): HyperGrid {
  const hats = results.filter((r) => r.config.approach === 'hat');
  const metric: HyperGrid['metric'] = hats.length && hats.every((r) => r.forgetting) ? 'rho' : 'accuracy';
  const val = (r: RunResult) => {
    const T = r.accuracy.length;
    return metric === 'rho' ? r.forgetting!.meanUpTo[T - 1] : 100 * r.averageAccuracy[T - 1];
  };
  const smax = [...new Set(hats.map((r) => Number(r.config.parameters.smax)))].sort((a, b) => a - b);
  const c = [...new Set(hats.map((r) => Number(r.config.parameters.c)))].sort((a, b) => a - b);
  const z = c.map((cv) => smax.map((sv) => {
    const xs = hats.filter((r) => Number(r.config.parameters.c) === cv && Number(r.config.parameters.smax) === sv).map(val);
    return xs.length ? mean(xs) : null;
  }));
  return { smax, c, z, metric, tasks: Math.max(0, ...hats.map((r) => r.accuracy.length)) };
}

export function hyperGridFigure(g: HyperGrid): PlotlyFigure {
  const label = g.metric === 'rho' ? `forgetting ratio rho<=${g.tasks}` : `average accuracy A<=${g.tasks} (%)`;
  const fig = heatmapFigure(g.z, `HAT robustness to smax and c: ${label} (paper Fig. 4)`, {
    x: g.smax.map(String), y: g.c.map(String), xTitle: 'smax (stability)', yTitle: 'c (compressibility)', text: true, colorscale: 'Viridis',
  });
  (fig.data[0] as Record<string, unknown>).colorbar = { title: { text: g.metric === 'rho' ? 'rho' : 'A %' } };
  (fig.layout.yaxis as Record<string, unknown>).autorange = true;
  return fig;
}

/** Line view of the grid: x = smax (log), one line per c. */
export function hyperLinesFigure(g: HyperGrid): PlotlyFigure {
  return {
    data: g.c.map((cv, i) => ({ type: 'scatter', mode: 'lines+markers', name: `c = ${cv}`, x: g.smax, y: g.z[i], connectgaps: true, line: { color: COLORS[i % COLORS.length] } })),
    layout: { title: { text: 'The same grid as lines: one per c' }, xaxis: { title: { text: 'smax' }, type: 'log' }, yaxis: { title: { text: g.metric === 'rho' ? `rho<=${g.tasks}` : `A<=${g.tasks} %` } }, height: 400 },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Figs. 5 and 6: capacity and weight reuse

/** The gated layers of a result's HAT network (rebuilt from the experiment and hidden widths). */
export function layerSpecsOf(r: RunResult): LayerSpec[] {
  const heads = r.data.tasks.map((t) => t.classes);
  const e = r.config.protocol.experiment;
  if (e === 'mnist2' || e === 'pmnist') return mlpConfig({ heads, hat: true, hidden: r.config.network.hidden }).layers;
  return alexnetConfig({ heads, hat: true }).layers;
}

/** Task gates of a HAT result (its summary keeps them). */
export function taskGatesOf(r: RunResult): number[][][] | undefined {
  return (r.summary as { taskGates?: number[][][] }).taskGates;
}

/** Network usage (%) after every epoch: x = cumulative epoch index, one line in total and one per layer. */
export function capacityFigure(log: MonitorLog, perLayer = true): PlotlyFigure {
  const x = log.epochs.map((_, i) => i);
  const data: Record<string, unknown>[] = [
    { type: 'scatter', mode: 'lines+markers', name: 'whole network', x, y: log.epochs.map((e) => 100 * e.totalUsage), line: { color: '#000', width: 3 }, marker: { size: 4 },
      text: log.epochs.map((e) => `${log.tasks[e.task]}, epoch ${e.epoch}`), hovertemplate: '%{text}<br>%{y:.2f}% of weights<extra></extra>' },
  ];
  if (perLayer) log.layers.forEach((l, k) => data.push({ type: 'scatter', mode: 'lines', name: l.name, x, y: log.epochs.map((e) => (100 * e.usage[k].activeWeights) / e.usage[k].weights), line: { color: COLORS[k % COLORS.length], width: 1 } }));
  const switches = log.epochs.flatMap((e, i) => (i > 0 && e.epoch === 0 ? [i - 0.5] : []));
  return {
    data,
    layout: {
      title: { text: `Weights in use while tasks accumulate (paper Fig. 5): ${log.experiment}, seed ${log.seed}` },
      xaxis: { title: { text: 'epoch (cumulative over tasks; 0 of each task = before training)' } }, yaxis: { title: { text: 'weights used (%)' }, rangemode: 'tozero' }, height: 450,
      shapes: switches.map((s) => ({ type: 'line', x0: s, x1: s, yref: 'paper', y0: 0, y1: 1, line: { dash: 'dash', color: '#888', width: 1 } })),
      annotations: log.tasks.map((name, t) => {
        const first = log.epochs.findIndex((e) => e.task === t);
        return { x: first, y: 1.02, yref: 'paper', text: name, showarrow: false, xanchor: 'left', font: { size: 10 } };
      }),
    },
  };
}

/** Active weights per layer after every task (cumulative attention; the paper's supplementary table). */
export function usagePerTaskRows(layers: LayerSpec[], taskGates: ArrayLike<number>[][], names: string[]): Row[] {
  return taskGates.map((_, t) => {
    const usage: LayerUsage[] = weightUsage(layers, cumulativeMax(taskGates.slice(0, t + 1)));
    const own = weightUsage(layers, taskGates[t]);
    const row: Row = { 'after task': `${t + 1}: ${names[t] ?? ''}` };
    usage.forEach((u) => (row[`${u.layer} %`] = Number(((100 * u.activeWeights) / u.weights).toFixed(2))));
    row['network %'] = Number((100 * totalUsage(usage)).toFixed(2));
    row['task\'s own %'] = Number((100 * totalUsage(own)).toFixed(2));
    return row;
  });
}

/**
 * Weight reuse (spec §8.6): entry [i][j] for j > i = 100 |W_i and W_j| / |W_i|, the percentage of task i's
 * weights (binarised own gates) that task j also uses; null elsewhere.
 */
export function reuseMatrix(layers: LayerSpec[], taskGates: ArrayLike<number>[][]): (number | null)[][] {
  const T = taskGates.length;
  const own = taskGates.map((g) => weightUsage(layers, g).reduce((a, u) => a + u.activeWeights, 0));
  return Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => {
    if (j <= i || own[i] === 0) return null;
    const both = taskGates[i].map((g, l) => Array.from(g, (v, k) => Math.min(v, taskGates[j][l][k])));
    return (100 * weightUsage(layers, both).reduce((a, u) => a + u.activeWeights, 0)) / own[i];
  }));
}

export function reuseFigure(matrix: (number | null)[][], names: string[]): PlotlyFigure {
  return heatmapFigure(matrix, 'Weight reuse between tasks (paper Fig. 6): % of row task\'s weights also used by column task', {
    x: names.map((n, i) => `${i + 1} ${n}`), y: names.map((n, i) => `${i + 1} ${n}`), xTitle: 'later task j', yTitle: 'task i', zmin: 0, zmax: 100, text: true, colorscale: 'Blues',
  });
}

// ---------------------------------------------------------------------------------------------------------
// Fig. 7: compression

/** Validation accuracy (step gates) vs % of weights kept, one colour per dataset, one dot per epoch; triangles: plain SGD. */
export function compressionFigure(logs: CompressionLog[]): PlotlyFigure {
  const data: Record<string, unknown>[] = [];
  logs.forEach((log, i) => {
    const color = COLORS[i % COLORS.length];
    const ep = log.epochs.filter((e) => e.epoch > 0);
    data.push({
      type: 'scatter', mode: 'markers+lines', name: log.dataset, legendgroup: log.dataset, x: ep.map((e) => e.compression), y: ep.map((e) => 100 * e.validAccuracy),
      marker: { color, size: 7 }, line: { color, width: 0.5 }, text: ep.map((e) => `epoch ${e.epoch}`), hovertemplate: `${log.dataset} %{text}<br>%{x:.1f}% weights, %{y:.1f}% acc<extra></extra>`,
    });
    if (log.sgdValidAccuracy !== undefined) {
      data.push({ type: 'scatter', mode: 'markers', name: `${log.dataset} SGD`, legendgroup: log.dataset, showlegend: false, x: [100], y: [100 * log.sgdValidAccuracy], marker: { color, size: 12, symbol: 'triangle-up' }, hovertemplate: `${log.dataset} plain SGD: %{y:.1f}%<extra></extra>` });
    }
  });
  return {
    data,
    layout: {
      title: { text: 'Compression: validation accuracy vs weights kept (paper Fig. 7; triangles: plain SGD, all weights)' },
      xaxis: { title: { text: 'weights kept (%)' }, type: 'log', range: [-0.5, 2.1] }, yaxis: { title: { text: 'validation accuracy (%)' } }, height: 460,
    },
  };
}

export function compressionRows(logs: CompressionLog[]): Row[] {
  return logs.map((l) => ({
    dataset: l.dataset, epochs: l.epochs.length - 1,
    'weights kept %': Number(l.final.compression.toFixed(2)),
    'valid acc % (step gates)': Number((100 * l.final.validAccuracy).toFixed(1)),
    'test acc % (step gates)': Number((100 * l.final.testAccuracy).toFixed(1)),
    'SGD valid acc %': l.sgdValidAccuracy === undefined ? null : Number((100 * l.sgdValidAccuracy).toFixed(1)),
  }));
}

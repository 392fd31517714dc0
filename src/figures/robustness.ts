/** Fig. 4 (spec §8.4): HAT's robustness to smax and c. No TensorFlow. */
import { APPROACH_INFO } from '../approaches/catalog';
import { changedParams } from '../core/params';
import { mean } from '../analysis/metrics';
import type { RunResult } from '../runs/result-file';
import { COLORS, type PlotlyFigure, type Row, heatmapFigure } from './plotly';

export interface HyperGrid {
  smax: number[];
  c: number[];
  /** z[i][j]: metric for c[i], smax[j] (mean over `seeds`), null when not run. */
  z: (number | null)[][];
  /**
   * The seeds every cell was run with, which each cell's mean is over, so that cells compare on the same
   * seeds (the default cell is also a row of Table 1, with more seeds); each cell's own when they share none.
   */
  seeds: number[];
  metric: 'rho' | 'accuracy';
  tasks: number;
}

/** A HAT run that differs from the defaults in smax and c only, with no monitoring: a cell of the grid. */
export function isRobustnessCell(r: RunResult): boolean {
  if (r.config.approach !== 'hat' || r.extras.gateLog || r.extras.compression) return false;
  return changedParams(APPROACH_INFO.hat.params, r.config.parameters).every(([k]) => k === 'smax' || k === 'c');
}

/**
 * rho^{<=T} (or, without references, average accuracy A^{<=T} in %) of every HAT (smax, c) cell of a family,
 * mean over the seeds all cells share (the paper: seed 0 only).
 */
export function hyperGrid(results: RunResult[]): HyperGrid {
  const all = results.filter(isRobustnessCell);
  const key = (r: RunResult) => `${String(r.config.parameters.smax)}|${String(r.config.parameters.c)}`;
  const seedsOf = new Map<string, Set<number>>();
  for (const r of all) seedsOf.set(key(r), (seedsOf.get(key(r)) ?? new Set()).add(r.config.protocol.seed));
  const sets = [...seedsOf.values()];
  const shared = sets.length ? [...sets[0]].filter((s) => sets.every((x) => x.has(s))).sort((a, b) => a - b) : [];
  const hats = shared.length ? all.filter((r) => shared.includes(r.config.protocol.seed)) : all;
  const seeds = shared.length ? shared : [...new Set(all.map((r) => r.config.protocol.seed))].sort((a, b) => a - b);
  const metric: HyperGrid['metric'] = hats.length && hats.every((r) => r.forgetting) ? 'rho' : 'accuracy';
  const val = (r: RunResult) => {
    const T = r.accuracy.length;
    return metric === 'rho' ? r.forgetting!.meanUpTo[T - 1] : 100 * r.averageAccuracy[T - 1];
  };
  const smax = [...new Set(hats.map((r) => Number(r.config.parameters.smax)))].sort((a, b) => a - b);
  const c = [...new Set(hats.map((r) => Number(r.config.parameters.c)))].sort((a, b) => a - b);
  const z = c.map((cv) =>
    smax.map((sv) => {
      const xs = hats
        .filter((r) => Number(r.config.parameters.c) === cv && Number(r.config.parameters.smax) === sv)
        .map(val);
      return xs.length ? mean(xs) : null;
    }),
  );
  return { smax, c, z, seeds, metric, tasks: Math.max(0, ...hats.map((r) => r.accuracy.length)) };
}

export function hyperGridFigure(g: HyperGrid): PlotlyFigure {
  const label = g.metric === 'rho' ? `forgetting ratio rho<=${g.tasks}` : `average accuracy A<=${g.tasks} (%)`;
  const fig = heatmapFigure(g.z, `HAT robustness to smax and c: ${label} (paper Fig. 4)`, {
    x: g.smax.map(String),
    y: g.c.map(String),
    xTitle: 'smax (stability)',
    yTitle: 'c (compressibility)',
    text: true,
    colorscale: 'Viridis',
  });
  fig.data[0].colorbar = { title: { text: g.metric === 'rho' ? 'rho' : 'A %' } };
  (fig.layout.yaxis as Record<string, unknown>).autorange = true;
  return fig;
}

/** Line view of the grid: x = smax (log), one line per c. */
export function hyperLinesFigure(g: HyperGrid): PlotlyFigure {
  return {
    data: g.c.map((cv, i) => ({
      type: 'scatter',
      mode: 'lines+markers',
      name: `c = ${cv}`,
      x: g.smax,
      y: g.z[i],
      connectgaps: true,
      line: { color: COLORS[i % COLORS.length] },
    })),
    layout: {
      title: { text: 'The same grid as lines: one per c' },
      xaxis: { title: { text: 'smax' }, type: 'log' },
      yaxis: { title: { text: g.metric === 'rho' ? `rho<=${g.tasks}` : `A<=${g.tasks} %` } },
      height: 400,
    },
  };
}

/** The grid as a table: one row per c, one column per smax (empty: not run). */
export function hyperGridRows(g: HyperGrid): Row[] {
  return g.c.map(
    (c, i) =>
      Object.fromEntries([
        ['c', c],
        ...g.smax.map((s, j) => [`smax ${s}`, g.z[i][j] === null ? null : Number(g.z[i][j]!.toFixed(3))]),
      ]) as Row,
  );
}

/** Fig. 4 (spec §8.4): HAT's robustness to smax and c. No TensorFlow. */
import { mean } from '../analysis/metrics';
import type { RunResult } from '../runs/result-file';
import { COLORS, type PlotlyFigure, heatmapFigure } from './plotly';

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
  const z = c.map((cv) =>
    smax.map((sv) => {
      const xs = hats
        .filter((r) => Number(r.config.parameters.c) === cv && Number(r.config.parameters.smax) === sv)
        .map(val);
      return xs.length ? mean(xs) : null;
    }),
  );
  return { smax, c, z, metric, tasks: Math.max(0, ...hats.map((r) => r.accuracy.length)) };
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

/** Plotly figure specs ({data, layout}) and table rows: what every figure function returns. No TensorFlow. */

export interface PlotlyFigure {
  data: Record<string, unknown>[];
  layout: Record<string, unknown>;
}

export type Row = Record<string, string | number | null>;

export const COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

/** A heat map of a matrix (e.g. a weight-gradient mask 1 - min(A_out, A_in)). */
export function heatmapFigure(
  z: (number | null)[][],
  title: string,
  opts: {
    x?: (string | number)[];
    y?: (string | number)[];
    xTitle?: string;
    yTitle?: string;
    zmin?: number;
    zmax?: number;
    colorscale?: string;
    text?: boolean;
    height?: number;
  } = {},
): PlotlyFigure {
  const trace: Record<string, unknown> = {
    type: 'heatmap',
    z,
    colorscale: opts.colorscale ?? 'Viridis',
    zmin: opts.zmin,
    zmax: opts.zmax,
    hoverongaps: false,
  };
  if (opts.x) trace.x = opts.x;
  if (opts.y) trace.y = opts.y;
  if (opts.text) {
    trace.text = z.map((row) =>
      row.map((v) => (v === null || !Number.isFinite(v) ? '' : v.toFixed(Math.abs(v) < 1 ? 2 : 0))),
    );
    trace.texttemplate = '%{text}';
  }
  return {
    data: [trace],
    layout: {
      title: { text: title },
      xaxis: { title: { text: opts.xTitle ?? '' }, type: 'category' },
      yaxis: { title: { text: opts.yTitle ?? '' }, type: 'category', autorange: 'reversed' },
      height: opts.height ?? 420,
    },
  };
}

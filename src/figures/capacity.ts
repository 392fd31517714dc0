/** Figs. 5 and 6 (spec §8.5, §8.6): capacity used while tasks accumulate, and weight reuse between tasks. No TensorFlow. */
import {
  type LayerUsage,
  type UnitUsage,
  cumulativeMax,
  decodeGates,
  totalUsage,
  weightUsage,
} from '../analysis/usage';

/** Units per layer each task uses, all together, and free (also `hat capacity`): from src/analysis/usage. */
export { unitUsage } from '../analysis/usage';
import type { LayerSpec } from '../nets/geometry';
import type { GateLogEpoch, GateLogExtras } from '../runs/monitors';
import type { RunResult } from '../runs/result-file';
import { COLORS, type PlotlyFigure, type Row, heatmapFigure } from './plotly';

/** The trunk layers of a result's network (recorded in the result file). */
export function layerSpecsOf(r: RunResult): LayerSpec[] {
  if (!r.network) throw new Error(`the ${r.config.approach} run has no network`);
  return r.network.layers;
}

/** Task gates of a HAT result (its summary keeps them). */
export function taskGatesOf(r: RunResult): number[][][] | undefined {
  return (r.summary as { taskGates?: number[][][] }).taskGates;
}

/** A run's per-epoch gate log (`--monitor gates`), with what its figures need to label it. */
export interface GateLogView {
  experiment: string;
  seed: number;
  tasks: string[];
  layers: LayerSpec[];
  smax: number;
  c: number;
  epochs: GateLogEpoch[];
  /** Final gates of every task (for the reuse matrix). */
  taskGates: number[][][];
}

export function gateLogOf(r: RunResult): GateLogView | undefined {
  const log = r.extras.gateLog as GateLogExtras | undefined;
  if (!log) return undefined;
  return {
    experiment: r.config.protocol.experiment,
    seed: r.config.protocol.seed,
    tasks: r.data.tasks.map((t) => t.name),
    layers: layerSpecsOf(r),
    smax: Number(r.config.parameters.smax),
    c: Number(r.config.parameters.c),
    epochs: log.epochs,
    taskGates: taskGatesOf(r) ?? [],
  };
}

/** Network usage (%) after every epoch: x = cumulative epoch index, one line in total and one per layer. */
export function capacityFigure(log: GateLogView, perLayer = true): PlotlyFigure {
  const x = log.epochs.map((_, i) => i);
  const data: Record<string, unknown>[] = [
    {
      type: 'scatter',
      mode: 'lines+markers',
      name: 'whole network',
      x,
      y: log.epochs.map((e) => 100 * e.totalUsage),
      line: { color: '#000', width: 3 },
      marker: { size: 4 },
      text: log.epochs.map((e) => `${log.tasks[e.task]}, epoch ${e.epoch}`),
      hovertemplate: '%{text}<br>%{y:.2f}% of weights<extra></extra>',
    },
  ];
  if (perLayer) {
    log.layers.forEach((l, k) =>
      data.push({
        type: 'scatter',
        mode: 'lines',
        name: l.name,
        x,
        y: log.epochs.map((e) => (100 * e.usage[k].activeWeights) / e.usage[k].weights),
        line: { color: COLORS[k % COLORS.length], width: 1 },
      }),
    );
  }
  const switches = log.epochs.flatMap((e, i) => (i > 0 && e.epoch === 0 ? [i - 0.5] : []));
  return {
    data,
    layout: {
      title: { text: `Weights in use while tasks accumulate (paper Fig. 5): ${log.experiment}, seed ${log.seed}` },
      xaxis: { title: { text: 'epoch (cumulative over tasks; 0 of each task = before training)' } },
      yaxis: { title: { text: 'weights used (%)' }, rangemode: 'tozero' },
      height: 450,
      shapes: switches.map((s) => ({
        type: 'line',
        x0: s,
        x1: s,
        yref: 'paper',
        y0: 0,
        y1: 1,
        line: { dash: 'dash', color: '#888', width: 1 },
      })),
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
    row["task's own %"] = Number((100 * totalUsage(own)).toFixed(2));
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
  return Array.from({ length: T }, (_, i) =>
    Array.from({ length: T }, (_, j) => {
      if (j <= i || own[i] === 0) return null;
      const both = taskGates[i].map((g, l) => Array.from(g, (v, k) => Math.min(v, taskGates[j][l][k])));
      return (100 * weightUsage(layers, both).reduce((a, u) => a + u.activeWeights, 0)) / own[i];
    }),
  );
}

export function reuseFigure(matrix: (number | null)[][], names: string[]): PlotlyFigure {
  return heatmapFigure(
    matrix,
    "Weight reuse between tasks (paper Fig. 6): % of row task's weights also used by column task",
    {
      x: names.map((n, i) => `${i + 1} ${n}`),
      y: names.map((n, i) => `${i + 1} ${n}`),
      xTitle: 'later task j',
      yTitle: 'task i',
      zmin: 0,
      zmax: 100,
      text: true,
      colorscale: 'Blues',
    },
  );
}

/** Units per layer used by each task, by all tasks together, and free (`hat capacity`): a grouped bar chart. */
export function unitUsageFigure(rows: UnitUsage[], tasks: string[]): PlotlyFigure {
  const layers = rows.map((r) => r.layer);
  const data: Record<string, unknown>[] = tasks.map((name, t) => ({
    type: 'bar',
    name: `${t + 1} ${name}`,
    x: layers,
    y: rows.map((r) => 100 * r.perTask[t]),
    marker: { color: COLORS[t % COLORS.length] },
  }));
  data.push({ type: 'bar', name: 'all tasks', x: layers, y: rows.map((r) => 100 * r.used), marker: { color: '#000' } });
  data.push({ type: 'bar', name: 'free', x: layers, y: rows.map((r) => 100 * r.free), marker: { color: '#bbb' } });
  return {
    data,
    layout: {
      title: { text: 'Units per layer: used by each task, by all, and free for new tasks' },
      barmode: 'group',
      yaxis: { title: { text: 'units (%)' }, range: [0, 100] },
      height: 420,
    },
  };
}

/** A layer's gates σ(smax·e) after every epoch of a gate log (white: closed, dark: open), first `units` units. */
export function gateHeatmapFigure(log: GateLogView, layer = 0, units = 200): PlotlyFigure {
  const rows = log.epochs.map((e) => decodeGates(e.gates[layer]).slice(0, units));
  return heatmapFigure(
    rows,
    `Gates of layer ${log.layers[layer].name} (first ${Math.min(units, log.layers[layer].units)} units) after every epoch`,
    {
      y: log.epochs.map((e) => `t${e.task + 1} ep${e.epoch}`),
      xTitle: 'unit',
      yTitle: 'task, epoch',
      zmin: 0,
      zmax: 1,
      colorscale: 'Greys',
      height: 300 + 6 * rows.length,
    },
  );
}

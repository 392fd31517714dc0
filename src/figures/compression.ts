/**
 * Fig. 7 (spec §8.7): single-task HAT runs with the compression log (`--monitor compression`, embeddings
 * U(0,2), step gates at evaluation) give validation accuracy against the percentage of weights kept after
 * every epoch; plain SGD on the same task (also logged) is the uncompressed reference. No TensorFlow.
 */
import { APPROACH_INFO } from '../approaches/catalog';
import { PAPER_COMPRESSION } from '../analysis/paper';
import type { CompressionEpoch, CompressionExtras } from '../runs/monitors';
import { type RunResult, protocolKey } from '../runs/result-file';
import { COLORS, type PlotlyFigure, type Row } from './plotly';

export interface CompressionSeries {
  dataset: string;
  seed: number;
  /** Every epoch's record (epoch 0 = before training). */
  epochs: CompressionEpoch[];
  /** The kept model (best validation epoch): weights kept, validation and test accuracy. */
  final: { epoch: number; compression: number; validAccuracy: number; testAccuracy: number };
  /** Plain SGD on the same task and protocol: validation accuracy of its best epoch. */
  sgdValidAccuracy?: number;
  maxTrain?: number;
}

const logOf = (r: RunResult) => r.extras.compression as CompressionExtras | undefined;
const bestRecord = (r: RunResult): CompressionEpoch | undefined => {
  const best = r.epochs[0]?.bestEpoch ?? 0;
  return logOf(r)?.epochs.find((e) => e.task === 0 && e.epoch === best);
};

/** One series per single-task gated run with a compression log, paired with its SGD reference when present. */
export function compressionSeries(results: readonly RunResult[]): CompressionSeries[] {
  const logged = results.filter((r) => logOf(r) && r.data.tasks.length === 1);
  const gated = logged.filter((r) => APPROACH_INFO[r.config.approach]?.network === 'hat');
  const references = logged.filter((r) => r.config.approach === 'sgd');
  return gated
    .map((r) => {
      const key = protocolKey(r.config.protocol);
      const sgd = references.find(
        (s) => protocolKey(s.config.protocol) === key && s.data.tasks[0].name === r.data.tasks[0].name,
      );
      const best = bestRecord(r);
      return {
        dataset: r.data.tasks[0].name,
        seed: r.config.protocol.seed,
        epochs: logOf(r)!.epochs,
        final: {
          epoch: best?.epoch ?? 0,
          compression: best?.compression ?? NaN,
          validAccuracy: best?.validAccuracy ?? NaN,
          testAccuracy: r.accuracy[0][0],
        },
        sgdValidAccuracy: sgd ? bestRecord(sgd)?.validAccuracy : undefined,
        maxTrain: r.config.protocol.maxTrain,
      };
    })
    .sort((a, b) => a.dataset.localeCompare(b.dataset) || a.seed - b.seed);
}

/** Validation accuracy (step gates) vs % of weights kept, one colour per dataset, one dot per epoch; triangles: plain SGD. */
export function compressionFigure(series: CompressionSeries[]): PlotlyFigure {
  const data: Record<string, unknown>[] = [];
  series.forEach((log, i) => {
    const color = COLORS[i % COLORS.length];
    const ep = log.epochs.filter((e) => e.epoch > 0);
    data.push({
      type: 'scatter',
      mode: 'markers+lines',
      name: log.dataset,
      legendgroup: log.dataset,
      x: ep.map((e) => e.compression),
      y: ep.map((e) => 100 * e.validAccuracy),
      marker: { color, size: 7 },
      line: { color, width: 0.5 },
      text: ep.map((e) => `epoch ${e.epoch}`),
      hovertemplate: `${log.dataset} %{text}<br>%{x:.1f}% weights, %{y:.1f}% acc<extra></extra>`,
    });
    if (log.sgdValidAccuracy !== undefined) {
      data.push({
        type: 'scatter',
        mode: 'markers',
        name: `${log.dataset} SGD`,
        legendgroup: log.dataset,
        showlegend: false,
        x: [100],
        y: [100 * log.sgdValidAccuracy],
        marker: { color, size: 12, symbol: 'triangle-up' },
        hovertemplate: `${log.dataset} plain SGD: %{y:.1f}%<extra></extra>`,
      });
    }
  });
  // the paper states the weights its final models keep for two datasets: dotted lines there
  const paper = PAPER_COMPRESSION;
  return {
    data,
    layout: {
      shapes: paper.map(({ percent }) => ({
        type: 'line',
        x0: percent,
        x1: percent,
        yref: 'paper',
        y0: 0,
        y1: 1,
        line: { dash: 'dot', color: '#888', width: 1 },
      })),
      // annotations on a log axis take log10 of the value (shapes take the value)
      annotations: paper.map(({ dataset, percent }) => ({
        x: Math.log10(percent),
        y: 1,
        yref: 'paper',
        text: `paper: ${dataset} ≈ ${percent}%`,
        showarrow: false,
        xanchor: 'left',
        font: { size: 10, color: '#555' },
      })),
      title: {
        text: 'Compression: validation accuracy vs weights kept (paper Fig. 7; triangles: plain SGD, all weights; dotted: the paper)',
      },
      xaxis: { title: { text: 'weights kept (%)' }, type: 'log', range: [-0.5, 2.1] },
      yaxis: { title: { text: 'validation accuracy (%)' } },
      height: 460,
    },
  };
}

export function compressionRows(series: CompressionSeries[]): Row[] {
  return series.map((l) => ({
    dataset: l.dataset,
    epochs: l.epochs.filter((e) => e.epoch > 0).length,
    'weights kept %': Number(l.final.compression.toFixed(2)),
    'valid acc % (step gates)': Number((100 * l.final.validAccuracy).toFixed(1)),
    'test acc % (step gates)': Number((100 * l.final.testAccuracy).toFixed(1)),
    'SGD valid acc %': l.sgdValidAccuracy === undefined ? null : Number((100 * l.sgdValidAccuracy).toFixed(1)),
    'paper: weights kept %': PAPER_COMPRESSION.find((p) => p.dataset === l.dataset)?.percent ?? null,
  }));
}

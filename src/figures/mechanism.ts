/** The mechanism (spec §8.8, paper Fig. 2): gates, the annealing of s, and the gradient it gives. Analytic, no TensorFlow. */
import { TRAIN_DEFAULTS } from '../training/types';
import { type ScheduleForm, annealedS, epochPositions } from '../approaches/hat/schedule';
import { COLORS, type PlotlyFigure } from './plotly';

const BATCH = TRAIN_DEFAULTS.batchSize;

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
/** sigma'(x) = 1 / (2 (cosh x + 1)), stable for large |x|. */
export const sigmoidPrime = (x: number): number => {
  const a = Math.abs(x);
  if (a > 50) return Math.exp(-a);
  return 1 / (2 * (Math.cosh(x) + 1));
};

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
export function gradientAnnealingCurves(
  smax: number,
  B = 100,
  points = 241,
  range = 6,
  form: ScheduleForm = 'code',
): AnnealingCurves {
  const e = Array.from({ length: points }, (_, i) => -range + (2 * range * i) / (points - 1));
  // an epoch of B full batches (of BATCH samples; only the fraction i/N matters for the code form)
  const s = epochPositions(B * BATCH, BATCH).map((p) => annealedS(form, smax, p));
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
  const line = (name: string, y: number[], color: string, dash?: string) => ({
    type: 'scatter',
    mode: 'lines',
    name,
    x: c.e,
    y,
    line: { color, dash, width: 2 },
  });
  return {
    data: [
      line('(i) s = 1', c.constantOne, COLORS[0]),
      line(`(ii) s = smax = ${smax}`, c.constantSmax, COLORS[1]),
      line('(iii) annealed s', c.annealed, COLORS[2]),
      line('(iv) annealed + compensation', c.compensated, COLORS[3], 'dash'),
    ],
    layout: {
      title: { text: `Cumulative gate gradient over one epoch of ${B} batches, smax = ${smax} (paper Fig. 2)` },
      xaxis: { title: { text: 'embedding e' } },
      yaxis: { title: { text: 'sum over batches of |d gate / d e|' }, type: 'log', exponentformat: 'power' },
      height: 420,
    },
  };
}

/** The gate sigma(s e) against e for several s (how s turns a soft gate into a step). */
export function gateFigure(svalues: number[], range = 6): PlotlyFigure {
  const e = Array.from({ length: 241 }, (_, i) => -range + (2 * range * i) / 240);
  return {
    data: svalues.map((s, i) => ({
      type: 'scatter',
      mode: 'lines',
      name: `s = ${s < 1 ? s.toPrecision(2) : s}`,
      x: e,
      y: e.map((x) => sigmoid(s * x)),
      line: { color: COLORS[i % COLORS.length] },
    })),
    layout: {
      title: { text: 'Gate a = sigma(s e) for increasing s' },
      xaxis: { title: { text: 'embedding e' } },
      yaxis: { title: { text: 'gate a' }, range: [-0.05, 1.05] },
      height: 380,
    },
  };
}

/**
 * s over the batches of an epoch (spec §2.4), repeated for a few epochs: the schedule training uses (the
 * reference's code form by default, as `-p schedule=` decides).
 */
export function annealingScheduleFigure(
  smax: number,
  samples: number,
  epochs = 3,
  form: ScheduleForm = 'code',
  batchSize = BATCH,
): PlotlyFigure {
  const positions = epochPositions(samples, batchSize);
  const x: number[] = [];
  const y: number[] = [];
  for (let ep = 0; ep < epochs; ep++) {
    for (const p of positions) {
      x.push(ep * positions.length + p.batch + 1);
      y.push(annealedS(form, smax, p));
    }
  }
  return {
    data: [{ type: 'scatter', mode: 'lines', name: 's', x, y, line: { color: COLORS[0] } }],
    layout: {
      title: {
        text: `Annealing of s from 1/smax to smax = ${smax} within every epoch (${positions.length} batches, ${form} form)`,
      },
      xaxis: { title: { text: 'batch' } },
      yaxis: { title: { text: 's' }, type: 'log' },
      height: 340,
    },
  };
}

/**
 * Callbacks that record what the paper's figures need, into the result file's extras (training/callbacks.ts):
 *
 * - `maskUsage` (key `masks`): after every task, the weight usage of each task's own gates and of the
 *   cumulative attention, per layer (HAT's statistics; any approach that reports masks).
 * - `gateLog` (key `gateLog`): the spec's monitoring log (§9, the reference's "hat-test"): after every epoch of
 *   every task (epoch 0 = before training) the task's gates σ(smax·e_t), the instantaneous cumulative
 *   attention's weight usage, validation accuracy and regulariser; per task the cumulative attention before
 *   it. Figs. 5 and 6.
 * - `compressionLog` (key `compression`): after every epoch, the percentage of weights the task's binarised
 *   gates keep and the validation accuracy (with the approach's evaluation gates: step gates for the
 *   compression variant, evalScale=10000). Approaches without gates keep 100%: plain SGD's run is Fig. 7's
 *   uncompressed reference.
 */
import { type LayerUsage, cumulativeMax, encodeGates, totalUsage, weightUsage } from '../analysis/usage';
import type { Callback, EpochEndEvent, TaskEndEvent, TaskStartEvent } from '../training/callbacks';
import { type Learner, type Predictor, type ReportsMasks, isLearner, reportsMasks } from '../training/types';

export const MONITORS = ['gates', 'compression'] as const;
export type MonitorName = (typeof MONITORS)[number];

export interface MaskUsageExtras {
  /** Per task: usage of its own binarised gates. */
  perTask: LayerUsage[][];
  /** After each task: usage of the cumulative attention. */
  cumulative: LayerUsage[][];
  totalCumulative: number[];
}

export function maskUsage(): Callback {
  let extras: MaskUsageExtras | undefined;
  return {
    key: 'masks',
    onTaskEnd(e: TaskEndEvent) {
      if (!reportsMasks(e.approach)) return;
      const { gatedLayers: layers, taskGates } = e.approach;
      const perTask = taskGates.map((g) => weightUsage(layers, g));
      const cumulative = taskGates.map((_, t) => weightUsage(layers, cumulativeMax(taskGates.slice(0, t + 1))));
      extras = { perTask, cumulative, totalCumulative: cumulative.map(totalUsage) };
    },
    extras: () => extras,
  };
}

/** One record of the gate log (spec §9). */
export interface GateLogEpoch {
  /** Task index (0-based) and epoch within the task (0 = before training, the spec's "-1"). */
  task: number;
  epoch: number;
  lr: number;
  trainLoss: number | null;
  validLoss: number;
  validAccuracy: number;
  /** Capacity regulariser R at s = smax. */
  regulariser: number;
  /** Per layer: units of the task whose gate is > 0.5. */
  activeUnits: number[];
  /** Weight usage of the instantaneous cumulative attention max(A_before, gates_t), per layer. */
  usage: LayerUsage[];
  /** Network-wide fraction of gated-layer weights in use (the curve of Fig. 5). */
  totalUsage: number;
  /** The task's gates σ(smax·e_t) per layer, encoded with encodeGates. */
  gates: string[];
}

export interface GateLogExtras {
  epochs: GateLogEpoch[];
  /** Per task and layer: the cumulative attention before the task (zeros for the first task), encoded. */
  cumulativeBefore: string[][];
}

type Gated = Learner & ReportsMasks;
const gated = (p: Predictor): p is Gated => isLearner(p) && reportsMasks(p);

export function gateLog(): Callback {
  let log: GateLogExtras = { epochs: [], cumulativeBefore: [] };
  let before: number[][] = [];
  const record = (
    approach: Gated,
    t: number,
    epoch: number,
    lr: number,
    trainLoss: number | null,
    validLoss: number,
    validAccuracy: number,
  ) => {
    const { gates, regulariser } = approach.currentGates(t);
    const usage = weightUsage(approach.gatedLayers, t === 0 ? gates : cumulativeMax([before, gates]));
    log.epochs.push({
      task: t,
      epoch,
      lr,
      trainLoss,
      validLoss,
      validAccuracy,
      regulariser,
      activeUnits: gates.map((g) => g.filter((v) => v > 0.5).length),
      usage,
      totalUsage: totalUsage(usage),
      gates: gates.map(encodeGates),
    });
  };
  return {
    key: 'gateLog',
    onTaskStart(e: TaskStartEvent) {
      if (!gated(e.approach) || !e.data) return;
      before = e.approach.cumulativeBefore(e.t);
      log.cumulativeBefore[e.t] = before.map(encodeGates);
      if (e.resumedAfterEpoch > 0) return; // the records of the epochs before the interruption are in the extras
      const valid = e.data.valid;
      record(e.approach, e.t, 0, NaN, null, e.approach.validationLoss(valid), e.approach.evaluate(valid, e.t).accuracy);
    },
    onEpochEnd(e: EpochEndEvent) {
      if (!gated(e.learner)) return;
      const { log: l } = e;
      record(e.learner, e.t, l.epoch, l.lr, l.trainLoss, l.validLoss, e.learner.evaluate(e.data.valid, e.t).accuracy);
    },
    extras: () => (log.epochs.length ? log : undefined),
    resume(extras: unknown) {
      log = extras as GateLogExtras;
    },
  };
}

export interface CompressionEpoch {
  task: number;
  epoch: number;
  /** Percentage of gated-layer weights kept by the task's binarised gates (100 without gates). */
  compression: number;
  validAccuracy: number;
  validLoss: number;
}

export interface CompressionExtras {
  epochs: CompressionEpoch[];
}

export function compressionLog(): Callback {
  let log: CompressionExtras = { epochs: [] };
  const record = (
    learner: Learner,
    t: number,
    epoch: number,
    validLoss: number,
    valid: Parameters<Learner['evaluate']>[0],
  ) => {
    const compression = reportsMasks(learner)
      ? 100 * totalUsage(weightUsage(learner.gatedLayers, learner.currentGates(t).gates))
      : 100;
    log.epochs.push({ task: t, epoch, compression, validAccuracy: learner.evaluate(valid, t).accuracy, validLoss });
  };
  return {
    key: 'compression',
    onTaskStart(e: TaskStartEvent) {
      if (isLearner(e.approach) && e.data && e.resumedAfterEpoch === 0)
        record(e.approach, e.t, 0, e.approach.validationLoss(e.data.valid), e.data.valid);
    },
    onEpochEnd(e: EpochEndEvent) {
      record(e.learner, e.t, e.log.epoch, e.log.validLoss, e.data.valid);
    },
    extras: () => (log.epochs.length ? log : undefined),
    resume(extras: unknown) {
      log = extras as CompressionExtras;
    },
  };
}

/** The callbacks of the named monitoring logs. */
export function monitorCallbacks(names: readonly MonitorName[] = []): Callback[] {
  return names.map((n) => (n === 'gates' ? gateLog() : compressionLog()));
}

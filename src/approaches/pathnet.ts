/**
 * PathNet (spec §5): per task, P candidate paths through the modular trunk (../nets/pathnet.ts) train in
 * turns, each with its own learning-rate schedule, for G generations of ⌊nepochs/G⌋ epochs; after every
 * generation the best model so far is restored and the losing paths become mutated copies of the winner.
 * Only modules that are on the path and not on an earlier task's best path train, so earlier tasks keep
 * exactly their outputs; modules no earlier task kept are reset to their initial weights before a task.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type ParamValues } from '../core/params';
import { Rng, type RngState } from '../core/rng';
import { type Batch, type Task } from '../data/experiments';
import { type Path, type PathNetModel } from '../nets/pathnet';
import { type BestSnapshot, LrSchedule, Trainer } from '../training/trainer';
import type { LearnerState, ScheduleState, TaskContext, TaskFitter } from '../training/types';
import { SgdLearner, crossEntropy } from './base';
import { type PATHNET_PARAMS } from './catalog';

export type PathNetParams = ParamValues<typeof PATHNET_PARAMS>;

/** N distinct modules out of M for each of L layers. */
export function randomPath(rng: Rng, layers: number, modules: number, active: number): Path {
  if (active > modules)
    throw new Error(`a path needs ${active} distinct modules per layer but a layer has only ${modules}`);
  return Array.from({ length: layers }, () => Array.from(rng.permutation(modules).slice(0, active)));
}

/** Copy of `path` whose every entry changes with probability 1/(N·L) by a uniform integer in [−2, 2], modulo M. */
export function mutatePath(rng: Rng, path: Path, modules: number): Path {
  const entries = path.length * path[0].length;
  return path.map((layer) =>
    layer.map((m) => {
      if (rng.next() >= 1 / entries) return m;
      const step = rng.int(5) - 2;
      return (((m + step) % modules) + modules) % modules;
    }),
  );
}

export class PathNet extends SgdLearner<PathNetModel> {
  readonly id = 'pathnet';
  readonly hyper: PathNetParams;
  /** Each finished task's winning path (used to evaluate it). */
  readonly bestPaths: Path[] = [];
  /** The candidate path being trained or validated (null between tasks). */
  candidate: Path | null = null;
  /** Modules kept by earlier tasks: frozen. */
  private readonly frozen = new Set<string>();
  /** Initial values of the modules no task has kept yet ("l/m" -> [weight, bias]); dropped once a module is frozen. */
  private readonly initial = new Map<string, tf.Tensor[]>();

  /** The model carries the module parameters (modules, active, widthFactor); the rest are the evolution's. */
  constructor(
    model: PathNetModel,
    readonly seed: number,
    params: Pick<PathNetParams, 'generations' | 'paths' | 'clipNorm'>,
  ) {
    super(model, params.clipNorm);
    this.hyper = { ...params, ...model.options };
    model.layers.forEach((layer, l) =>
      layer.modules.forEach((_, m) =>
        this.initial.set(
          `${l}/${m}`,
          model.moduleVariables(l, m).map((v) => tf.clone(v)),
        ),
      ),
    );
  }

  get generations(): number {
    return this.hyper.generations;
  }
  get paths(): number {
    return this.hyper.paths;
  }

  /** Path evolution for the task (spec §5, PathNet steps 2-6). */
  override trainer(ctx: TaskContext): TaskFitter {
    return new EvolutionTrainer(this, ctx);
  }

  private pathFor(task: number): Path {
    if (task < this.bestPaths.length) return this.bestPaths[task];
    if (task === this.task && this.candidate) return this.candidate;
    throw new Error(`pathnet has no path for task ${task + 1} yet`);
  }

  protected trainableVariables(batch: Batch): tf.Variable[] {
    const path = this.pathFor(batch.task);
    const vars: tf.Variable[] = [];
    const seen = new Set<string>();
    path.forEach((modules, l) => {
      for (const m of modules) {
        const key = `${l}/${m}`;
        if (this.frozen.has(key) || seen.has(key)) continue;
        seen.add(key);
        vars.push(...this.model.moduleVariables(l, m));
      }
    });
    return [...vars, ...this.model.headVariables(batch.task)];
  }

  protected objective(batch: Batch, training: boolean): tf.Scalar {
    return crossEntropy(
      this.model.logits(this.model.features(batch.x, this.pathFor(batch.task), training), batch.task),
      batch.y,
    );
  }

  protected evalLogits(x: tf.Tensor, task: number): tf.Tensor2D {
    return this.model.logits(this.model.features(x, this.pathFor(task), false), task);
  }

  override beginTask(t: number, tasks: Task[]): void {
    super.beginTask(t, tasks);
    if (t === 0) return;
    // modules that no earlier task kept go back to their initial weights
    for (const [key, values] of this.initial) {
      const [l, m] = key.split('/').map(Number);
      this.model.moduleVariables(l, m).forEach((v, i) => v.assign(values[i]));
    }
  }

  /** The winner of task t's evolution: kept for evaluating it, and its modules frozen. */
  keepPath(t: number, path: Path): void {
    this.candidate = null;
    this.bestPaths[t] = path.map((layer) => [...layer]);
    this.freeze(this.bestPaths[t]);
  }

  /** Modules on a kept path never train again; their initial values are no longer needed. */
  private freeze(path: Path): void {
    path.forEach((ms, l) =>
      ms.forEach((m) => {
        const key = `${l}/${m}`;
        this.frozen.add(key);
        const initial = this.initial.get(key);
        if (initial) tf.dispose(initial);
        this.initial.delete(key);
      }),
    );
  }

  override summary(): Record<string, unknown> {
    return { bestPaths: this.bestPaths };
  }

  protected override extraState(): LearnerState {
    return { tensors: {}, json: { bestPaths: this.bestPaths } };
  }
  protected override loadExtraState(state: LearnerState): void {
    const { bestPaths } = state.json as { bestPaths: Path[] };
    this.bestPaths.splice(0, this.bestPaths.length, ...bestPaths);
    bestPaths.forEach((path) => this.freeze(path));
  }

  override dispose(): void {
    for (const values of this.initial.values()) tf.dispose(values);
    super.dispose();
  }
}

/** Where PathNet's evolution is within a task (for mid-task checkpoints). */
interface EvolutionState {
  /** Generation, candidate path, and epochs that path has trained in this generation. */
  g: number;
  p: number;
  e: number;
  paths: Path[];
  schedules: ScheduleState[];
  winner: number;
  rng: RngState;
}

/**
 * PathNet's loop for one task (spec §5): P candidate paths train in turns, each with its own learning-rate
 * schedule, for G generations of ⌊nepochs/G⌋ epochs; whenever a validation loss beats the best over all
 * paths the model is kept (the trainer's best snapshot); after every generation the best model is restored
 * and the losing paths become mutated copies of the winner. As in the reference, a path's optimiser is built
 * once per generation: a learning-rate decay takes effect at its next turn, not within the current one.
 */
export class EvolutionTrainer extends Trainer {
  private evolution: { state: EvolutionState; rng: Rng; schedules: LrSchedule[] } | null = null;

  constructor(
    readonly pathnet: PathNet,
    ctx: TaskContext,
  ) {
    super(pathnet, ctx);
  }

  protected override loop(best: BestSnapshot, resumed?: unknown): void {
    const { pathnet, ctx } = this;
    const { opts, t } = ctx;
    const { modules, active } = pathnet.model.options;
    const L = pathnet.model.layers.length;
    let rng: Rng;
    let state: EvolutionState;
    if (resumed) {
      state = structuredClone(resumed as EvolutionState);
      rng = new Rng('', state.rng);
    } else {
      rng = new Rng(`pathnet/${pathnet.seed}/${t}`);
      const paths = Array.from({ length: pathnet.paths }, () => randomPath(rng, L, modules, active));
      state = { g: 0, p: 0, e: 0, paths, schedules: [], winner: 0, rng: rng.state() };
    }
    const schedules = resumed
      ? state.schedules.map((s) => LrSchedule.fromState(opts, s))
      : state.paths.map(() => new LrSchedule(opts));
    this.evolution = { state, rng, schedules };
    const epochsPerGeneration = Math.max(1, Math.floor(opts.nepochs / pathnet.generations));
    const generations = Math.min(pathnet.generations, Math.ceil(opts.nepochs / epochsPerGeneration));
    this.maxEpochs = generations * epochsPerGeneration * pathnet.paths;
    for (; state.g < generations && !schedules.every((s) => s.done); state.g++, state.p = 0) {
      for (; state.p < state.paths.length; state.p++, state.e = 0) {
        const schedule = schedules[state.p];
        pathnet.candidate = state.paths[state.p];
        // the path's optimiser of this turn: its lr when the turn began
        const lr = schedule.lr;
        while (state.e < epochsPerGeneration && !schedule.done) {
          const entry = this.epoch(lr, { path: state.p, generation: state.g });
          entry.best = best.offer(entry.validLoss);
          if (entry.best) state.winner = state.p;
          schedule.update(entry.validLoss);
          state.e++;
          this.finish(entry);
        }
      }
      best.restore();
      state.paths.forEach((_, p) => {
        if (p === state.winner) return;
        state.paths[p] = mutatePath(rng, state.paths[state.winner], modules);
        schedules[p].reset(schedules[state.winner].lr);
      });
    }
    pathnet.keepPath(t, state.paths[state.winner]);
  }

  protected override loopState(): unknown {
    if (!this.evolution) return null;
    const { state, rng, schedules } = this.evolution;
    return { ...state, schedules: schedules.map((s) => s.state()), rng: rng.state() };
  }
}

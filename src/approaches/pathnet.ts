/**
 * PathNet (spec §5): per task, P candidate paths through the modular trunk (../nets/pathnet.ts) train in
 * turns, each with its own learning-rate schedule, for G generations of ⌊nepochs/G⌋ epochs; after every
 * generation the best model so far is restored and the losing paths become mutated copies of the winner.
 * Only modules that are on the path and not on an earlier task's best path train, so earlier tasks keep
 * exactly their outputs; modules no earlier task kept are reset to their initial weights before a task.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Batch, Task } from '../data/experiments';
import { Path, PathNetModel } from '../nets/pathnet';
import { Rng } from '../rng';
import { EpochRunner, LrSchedule } from '../train';
import { ApproachState, SgdApproach, crossEntropy } from './approach';

export interface PathNetHyper {
  generations: number;
  paths: number;
  clipNorm: number;
}

/** N distinct modules out of M for each of L layers. */
export function randomPath(rng: Rng, layers: number, modules: number, active: number): Path {
  if (active > modules) throw new Error(`a path needs ${active} distinct modules per layer but a layer has only ${modules}`);
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

export class PathNet extends SgdApproach<PathNetModel> {
  readonly id = 'pathnet';
  readonly generations: number;
  readonly paths: number;
  /** Each finished task's winning path (used to evaluate it). */
  readonly bestPaths: Path[] = [];
  /** The candidate path being trained or validated (null between tasks). */
  candidate: Path | null = null;
  /** Modules kept by earlier tasks: frozen. */
  private readonly frozen = new Set<string>();
  /** Initial values of the modules no task has kept yet ("l/m" -> [weight, bias]); dropped once a module is frozen. */
  private readonly initial = new Map<string, tf.Tensor[]>();

  constructor(model: PathNetModel, private readonly seed: number, opts: Partial<PathNetHyper> = {}) {
    super(model, { clipNorm: opts.clipNorm ?? 1000 });
    this.generations = opts.generations ?? 20;
    this.paths = opts.paths ?? 2;
    if (!(this.generations >= 1) || !(this.paths >= 1)) throw new Error('pathnet needs generations >= 1 and paths >= 1');
    this.hyper = { generations: this.generations, paths: this.paths, modules: model.options.modules, active: model.options.active, widthFactor: model.options.widthFactor, clipNorm: this.clipNorm };
    model.layers.forEach((layer, l) => layer.modules.forEach((_, m) => this.initial.set(`${l}/${m}`, model.moduleVariables(l, m).map((v) => tf.clone(v)))));
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
    return crossEntropy(this.model.logits(this.model.features(batch.x, this.pathFor(batch.task), training), batch.task), batch.y);
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

  /** Path evolution for one task (spec §5, PathNet steps 2-6). */
  learnTask(runner: EpochRunner): void {
    const { opts, t } = runner;
    const { modules, active } = this.model.options;
    const L = this.model.layers.length;
    const rng = new Rng(`pathnet/${this.seed}/${t}`);
    const paths = Array.from({ length: this.paths }, () => randomPath(rng, L, modules, active));
    const schedules = paths.map(() => new LrSchedule(opts));
    const epochsPerGeneration = Math.max(1, Math.floor(opts.nepochs / this.generations));
    const generations = Math.min(this.generations, Math.ceil(opts.nepochs / epochsPerGeneration));
    runner.maxEpochs = generations * epochsPerGeneration * this.paths;
    let winner = 0;
    let bestOverall = Infinity;
    let best = this.snapshot();
    try {
      for (let g = 0; g < generations && !schedules.every((s) => s.done); g++) {
        paths.forEach((path, p) => {
          const schedule = schedules[p];
          this.candidate = path;
          for (let e = 0; e < epochsPerGeneration && !schedule.done; e++) {
            const entry = runner.epoch(schedule.lr, { path: p, generation: g });
            if (entry.validLoss < bestOverall) {
              bestOverall = entry.validLoss;
              tf.dispose(best);
              best = this.snapshot();
              winner = p;
              entry.best = true;
            }
            schedule.update(entry.validLoss);
            runner.finish(entry);
          }
        });
        this.restore(best);
        paths.forEach((_, p) => {
          if (p === winner) return;
          paths[p] = mutatePath(rng, paths[winner], modules);
          schedules[p].reset(schedules[winner].lr);
        });
      }
      this.restore(best);
    } finally {
      tf.dispose(best);
    }
    this.candidate = null;
    this.bestPaths[t] = paths[winner].map((layer) => [...layer]);
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

  protected override extraState(): ApproachState {
    return { tensors: {}, json: { bestPaths: this.bestPaths } };
  }
  protected override loadExtraState(state: ApproachState): void {
    const { bestPaths } = state.json as { bestPaths: Path[] };
    this.bestPaths.splice(0, this.bestPaths.length, ...bestPaths);
    bestPaths.forEach((path) => this.freeze(path));
  }

  override dispose(): void {
    for (const values of this.initial.values()) tf.dispose(values);
    super.dispose();
  }
}

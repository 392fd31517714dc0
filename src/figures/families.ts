/** Naming and grouping of result files for tables and figures. No TensorFlow. */
import { APPROACH_INFO, REFERENCES, isReference, referenceKind } from '../approaches/catalog';
import type { RunResult } from '../runs/result-file';

/** Display name of a result: approach label (HAT, SGD-F, ...) plus its non-default parameters. */
export function approachLabel(r: RunResult): string {
  const base = APPROACH_INFO[r.config.approach]?.label ?? r.config.approach;
  const suffix = r.config.tag.startsWith(r.config.approach)
    ? r.config.tag.slice(r.config.approach.length).replace(/^-/, '')
    : r.config.tag;
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

/** The seeds of `results` that have both their random and their joint reference. */
function referencedSeeds(results: RunResult[]): number[] {
  const seeds = [...new Set(results.map((r) => r.config.protocol.seed))];
  return seeds.filter((s) =>
    REFERENCES.every((kind) =>
      results.some((r) => r.config.protocol.seed === s && referenceKind(r.config.approach) === kind),
    ),
  );
}

/**
 * The family cut to the seeds that have both references, or undefined when none has: a grid part-way
 * through (seed 1's random run done, its joint run not yet) still shows the seeds it can rank.
 */
export function referencedPart(f: Family): Family | undefined {
  if (f.hasReferences) return f;
  const seeds = new Set(referencedSeeds(f.results));
  const rs = f.results.filter((r) => seeds.has(r.config.protocol.seed));
  return rs.length ? families(rs)[0] : undefined;
}

/** Groups results into families; most useful first (experiments in `prefer` order, then size). */
export function families(results: RunResult[], prefer: string[] = ['mixture', 'cifar', 'pmnist', 'mnist2']): Family[] {
  const groups = new Map<string, RunResult[]>();
  for (const r of results) {
    const k = familyKey(r);
    const group = groups.get(k) ?? [];
    // the same run found in two folders counts once
    if (!group.some((o) => o.config.tag === r.config.tag && o.config.protocol.seed === r.config.protocol.seed))
      group.push(r);
    groups.set(k, group);
  }
  const out: Family[] = [...groups.entries()].map(([key, rs]) => {
    const p = rs[0].config.protocol;
    const seeds = [...new Set(rs.map((r) => r.config.protocol.seed))];
    const hasReferences = referencedSeeds(rs).length === seeds.length;
    const parts = [
      `${p.experiment}, ${p.tasks} tasks`,
      `seeds ${seeds.sort((a, b) => a - b).join(',')}`,
      `max ${p.train.nepochs} epochs`,
    ];
    if (p.maxTrain) parts.push(`max ${p.maxTrain} training samples per task`);
    if (rs[0].config.network.hidden) parts.push(`hidden ${rs[0].config.network.hidden.join('-')}`);
    return { key, experiment: p.experiment, tasks: p.tasks, results: rs, hasReferences, description: parts.join('; ') };
  });
  const rank = (e: string) => (prefer.indexOf(e) < 0 ? prefer.length : prefer.indexOf(e));
  return out.sort(
    (a, b) => rank(a.experiment) - rank(b.experiment) || b.tasks - a.tasks || b.results.length - a.results.length,
  );
}

/** Results of the methods (not the forgetting ratio's references). */
export function methods(results: RunResult[]): RunResult[] {
  return results.filter((r) => !isReference(r.config.approach));
}

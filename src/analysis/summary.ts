/** The text summary of result files (`hat run`, `hat quick`, `hat table`): one row per run, Table 1's order. No TensorFlow. */
import { REFERENCES, TABLE1, referenceKind } from '../approaches/catalog';
import type { RunResult } from '../runs/result-file';

const pct = (x: number | undefined, digits = 1): string =>
  x === undefined || !Number.isFinite(x) ? '-' : (100 * x).toFixed(digits);
const num = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(3));

/** References first (random, then joint), then as the paper's Table 1: by final forgetting ratio, worst first. */
export function table1Order(results: RunResult[]): RunResult[] {
  const rank = (r: RunResult) => (REFERENCES as readonly string[]).indexOf(referenceKind(r.config.approach) ?? '');
  const final = (r: RunResult) => r.forgetting?.meanUpTo[r.accuracy.length - 1] ?? -Infinity;
  const references = results
    .filter((r) => rank(r) >= 0)
    .sort((a, b) => rank(a) - rank(b) || a.config.tag.localeCompare(b.config.tag));
  return [...references, ...results.filter((r) => rank(r) < 0).sort((a, b) => final(a) - final(b))];
}

/** Grouped by experiment and seed; within a group as `table1Order`. */
export function byExperimentAndSeed(results: RunResult[]): RunResult[] {
  const rank = new Map(table1Order(results).map((r, i) => [r, i]));
  return [...results].sort(
    (a, b) =>
      a.config.protocol.experiment.localeCompare(b.config.protocol.experiment) ||
      a.config.protocol.seed - b.config.protocol.seed ||
      rank.get(a)! - rank.get(b)!,
  );
}

export function summaryTable(results: RunResult[]): string {
  const header = [
    'experiment',
    'approach',
    'seed',
    'tasks',
    'A<=T %',
    'rho<=2',
    'rho<=T',
    'task-1 acc % (first -> last)',
    'train s',
  ];
  const rows = results.map((r) => {
    const T = r.accuracy.length;
    const rho = r.forgetting?.meanUpTo;
    return [
      r.config.protocol.experiment,
      r.config.tag,
      String(r.config.protocol.seed),
      String(T),
      pct(r.averageAccuracy[T - 1]),
      num(rho?.[Math.min(1, T - 1)]),
      num(rho?.[T - 1]),
      `${pct(r.accuracy[0]?.[0])} -> ${pct(r.accuracy[T - 1]?.[0])}`,
      r.timings.seconds.toFixed(0),
    ];
  });
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(header), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

/** The sentence under a Table 1-ordered summary. */
export const SUMMARY_NOTE =
  "rho = forgetting ratio (0: as good as joint training, -1: random guessing); rows as the paper's Table 1,\n" +
  `worst rho<=T first; the paper's mixture order for comparison: ${TABLE1.join(' < ')}.`;

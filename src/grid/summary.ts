/**
 * `hat results DIR`: what a results folder holds and what it says. Runs found, complete, partial, running,
 * failed and (against a protocol or grid) missing; Table 1 per family of comparable runs (mean and population
 * std over seeds, the paper's numbers beside, reference-code and paper variants labelled apart) with BWT and
 * FWT beside rho; the robustness grid, HAT's weight usage and the compression table. Reads result files
 * with the loader the notebooks use. No TensorFlow.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isReference } from '../approaches/catalog';
import type { Stat } from '../analysis/stats';
import { compressionRows, compressionSeries } from '../figures/compression';
import { approachLabel, families } from '../figures/families';
import {
  type Table1Data,
  type Table1Row,
  isTable1Run,
  paperRankCorrelation,
  paperSetupText,
  runLabel,
  table1Data,
} from '../figures/forgetting';
import { hyperGrid } from '../figures/robustness';
import type { MaskUsageExtras } from '../runs/monitors';
import { type LoadedResult, attachForgetting, loadResults } from '../runs/loader';
import type { RunResult } from '../runs/result-file';
import type { GridPlan } from './expand';
import { LOCK_DEFAULTS, readLock, staleReason } from './locks';
import { type FailedRecord, type GridExtras, readFailed, resultFile, runStatus } from './state';

export interface RunCounts {
  /** Protocol (or grid) name, '-' for results not written by a grid. */
  grid: string;
  scale: string;
  found: number;
  complete: number;
  /** Result files of unfinished runs nobody is running (they resume when rerun). */
  partial: number;
  running: number;
  failed: number;
  /** Hours the complete runs took (their result files' task times summed; a grid's wall time is about this over its workers). */
  hours: number;
  /** The same runs' hours on an otherwise idle machine, estimated from their epoch times (see unloadedSeconds). */
  idleHours: number;
  /** Against --protocol/--file only: runs of the grid with no file at all. */
  missing?: number;
  missingNames?: string[];
}

/** Mean and population std over seeds (numpy's default ddof=0, as the paper's Table 1 script). */
export interface MeanStd {
  mean: number;
  std: number;
  n: number;
}

export interface TableRow {
  label: string;
  approach: string;
  tag: string;
  /** For IMM-mode and PNN: the reference code's behaviour or the paper's method. */
  variant?: 'reference' | 'paper';
  seeds: number[];
  /** A^{<=T} in %. */
  accuracy: MeanStd;
  rho2?: MeanStd;
  rhoT?: MeanStd;
  bwt: MeanStd;
  fwt?: MeanStd;
  paper?: { rho2?: string; rho8?: string; final?: string };
}

export interface TableSection {
  family: string;
  experiment: string;
  tasks: number;
  hasReferences: boolean;
  rows: TableRow[];
  /** Spearman's rank correlation of our final rho with the paper's rho<=8 (mixture; paperRankCorrelation). */
  paperOrder?: { n: number; spearman: number };
}

export interface RobustnessSection {
  family: string;
  experiment: string;
  tasks: number;
  metric: 'rho' | 'accuracy';
  smax: number[];
  c: number[];
  /** z[i][j]: the metric for c[i], smax[j] (mean over `seeds`). */
  z: (number | null)[][];
  /** The seeds every cell has (HyperGrid.seeds). */
  seeds: number[];
}

export interface UsageRow {
  file: string;
  experiment: string;
  seed: number;
  label: string;
  tasks: string[];
  /** Network-wide weight usage (%) of the cumulative attention after each task. */
  totalAfterTask: number[];
  /** Per layer after the last task (%). */
  perLayer: { layer: string; percent: number }[];
}

export interface ResultsSummary {
  dir: string;
  runs: RunCounts[];
  failures: { name: string; grid: string; attempt: number; time: string; error: string }[];
  tables: TableSection[];
  robustness: RobustnessSection[];
  usage: UsageRow[];
  compression: Record<string, string | number | null>[];
  /** Files that could not be read. */
  problems: string[];
}

const gridOf = (r: RunResult): Partial<GridExtras> | undefined => r.extras.grid as Partial<GridExtras> | undefined;

const fmt2 = (x: number) => (x >= 0 ? ' ' : '') + x.toFixed(2);
const ms = (s: Stat): MeanStd => ({ mean: s.mean, std: s.popStd, n: s.n });

const withOrder = (o: TableSection['paperOrder']) => (o ? { paperOrder: o } : {});

/** Table 1 of a family, from the figures' table1Data (the notebook shows the same numbers). */
function tableRows(family: RunResult[], data: Table1Data): TableRow[] {
  const T = data.tasks;
  const tagOf = (r: Table1Row) =>
    family.find((x) => isTable1Run(x) && runLabel(x) === r.label)?.config.tag ?? r.approach;
  return data.rows.map((r): TableRow => {
    const row: TableRow = {
      label: r.label,
      approach: r.approach,
      tag: tagOf(r),
      ...(r.variant ? { variant: r.variant } : {}),
      seeds: r.seeds,
      accuracy: ms(r.accuracy),
      bwt: ms(r.bwt),
      ...(r.reference || !r.rho.length
        ? {}
        : { rho2: r.rho[1] ? ms(r.rho[1]) : undefined, rhoT: ms(r.rho[T - 1] ?? r.rho[r.rho.length - 1]) }),
      ...(r.fwt ? { fwt: ms(r.fwt) } : {}),
    };
    if (r.paper)
      row.paper = {
        rho2: `${fmt2(r.paper.rho2[0])} (${r.paper.rho2[1].toFixed(2)})`,
        rho8: `${fmt2(r.paper.rho8[0])} (${r.paper.rho8[1].toFixed(2)})`,
      };
    else if (r.paperSetup) row.paper = { final: paperSetupText(r.paperSetup) };
    return row;
  });
}

function usageRow(r: RunResult, file: string): UsageRow | undefined {
  const masks = r.extras.masks as MaskUsageExtras | undefined;
  if (!masks?.cumulative?.length) return undefined;
  const last = masks.cumulative[masks.cumulative.length - 1];
  return {
    file,
    experiment: r.config.protocol.experiment,
    seed: r.config.protocol.seed,
    label: approachLabel(r),
    tasks: r.data.tasks.map((t) => t.name),
    totalAfterTask: masks.totalCumulative.map((x) => 100 * x),
    perLayer: last.map((u) => ({ layer: u.layer, percent: (100 * u.activeWeights) / u.weights })),
  };
}

/** Every file under `dir` (to `depth` levels, hidden folders skipped) whose name ends with `suffix`. */
function filesEnding(dir: string, suffix: string, depth: number): string[] {
  const out: string[] = [];
  const walk = (d: string, level: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (level < depth && !e.name.startsWith('.')) walk(p, level + 1);
      } else if (e.name.endsWith(suffix)) out.push(p);
    }
  };
  walk(dir, 0);
  return out.sort();
}

export interface SummaryOptions {
  /** Sub-folder levels to read (default 2: res/ with res/lite/, res/smoke/ ...). */
  depth?: number;
  /** Count the runs of this plan that are missing from `dir` (the grid's own folder). */
  plan?: GridPlan;
  lockTimeout?: number;
}

export function summarise(dir: string, o: SummaryOptions = {}): ResultsSummary {
  const depth = o.depth ?? 2;
  const problems: string[] = [];
  const loaded = loadResults(dir, {
    depth,
    skip: ['.grid', 'report', 'notebook-runs', 'test-artifacts'],
    includeIncomplete: true,
    onProblem: (_f, m) => problems.push(m),
  });
  const complete = loaded.filter((l) => l.result.status === 'complete');
  const byFolder = new Map<string, LoadedResult[]>();
  for (const l of complete) byFolder.set(path.dirname(l.file), [...(byFolder.get(path.dirname(l.file)) ?? []), l]);
  for (const l of complete) attachForgetting(l.result, byFolder.get(path.dirname(l.file)) ?? []);

  // --- counts per grid and scale ---
  const unloaded = unloadedSeconds(complete.map((l) => l.result));
  const idleOf = new Map(complete.map((l, i) => [l, unloaded[i]]));
  const timeout = o.lockTimeout ?? LOCK_DEFAULTS.timeout;
  const counts = new Map<string, RunCounts>();
  const bucket = (grid: string, scale: string): RunCounts => {
    const k = `${grid}\t${scale}`;
    let c = counts.get(k);
    if (!c)
      counts.set(
        k,
        (c = { grid, scale, found: 0, complete: 0, partial: 0, running: 0, failed: 0, hours: 0, idleHours: 0 }),
      );
    return c;
  };
  const failures: ResultsSummary['failures'] = [];
  for (const l of loaded) {
    const g = gridOf(l.result);
    const grid = g?.protocol ?? g?.grid ?? '-';
    const c = bucket(grid, g?.scale ?? '-');
    c.found++;
    if (l.result.status === 'complete') {
      c.complete++;
      c.hours += l.result.timings.seconds / 3600;
      c.idleHours += idleOf.get(l)! / 3600;
    } else {
      const lock = l.file.replace(/\.json$/, '.lock');
      const info = readLock(lock);
      if (info !== undefined && !staleReason(info, lock, { timeout })) c.running++;
      else if (l.result.status !== 'failed') c.partial++;
      // a failed run outside a grid has no failure record (a grid's is counted below): its result file says why
      else if (!fs.existsSync(l.file.replace(/\.json$/, '.failed.json'))) {
        c.failed++;
        const f = l.result.failure;
        failures.push({
          name: path.basename(l.file, '.json'),
          grid,
          attempt: 1,
          time: f?.time ?? '',
          error: (f?.error ?? 'failed').split('\n')[0],
        });
      }
    }
  }
  for (const f of filesEnding(dir, '.failed.json', depth)) {
    const rec: FailedRecord | undefined = readFailed(f);
    if (!rec) continue;
    const grid = rec.meta.protocol ?? rec.meta.grid ?? '-';
    bucket(grid, rec.meta.scale ?? '-').failed++;
    failures.push({ name: rec.name, grid, attempt: rec.attempt, time: rec.time, error: rec.error.split('\n')[0] });
  }
  const runs = [...counts.values()].sort((a, b) => a.grid.localeCompare(b.grid) || a.scale.localeCompare(b.scale));
  if (o.plan) {
    const plan = o.plan;
    const secondsOf = new Map(complete.map((l) => [path.resolve(l.file), [l.result.timings.seconds, idleOf.get(l)!]]));
    const c: RunCounts = {
      grid: `${plan.name} (plan)`,
      scale: plan.scale ?? '-',
      found: 0,
      complete: 0,
      partial: 0,
      running: 0,
      failed: 0,
      hours: 0,
      idleHours: 0,
      missing: 0,
      missingNames: [],
    };
    for (const r of plan.runs) {
      const s = runStatus(dir, r, { timeout });
      if (s.state === 'queued' || s.state === 'conflict') {
        c.missing!++;
        c.missingNames!.push(r.name);
        continue;
      }
      c.found++;
      if (s.state === 'done') {
        c.complete++;
        const [seconds, idle] = secondsOf.get(path.resolve(resultFile(dir, r))) ?? [0, 0];
        c.hours += seconds / 3600;
        c.idleHours += idle / 3600;
      } else if (s.state === 'partial') c.partial++;
      else if (s.state === 'running') c.running++;
      else if (s.state === 'failed') c.failed++;
    }
    runs.unshift(c);
  }

  // --- tables per family ---
  const results = complete.map((l) => l.result);
  const tables: TableSection[] = [];
  const robustness: RobustnessSection[] = [];
  for (const fam of families(results)) {
    const data = table1Data(fam.results);
    const rows = tableRows(fam.results, data);
    if (rows.some((r) => !isReference(r.approach)))
      tables.push({
        family: fam.description,
        experiment: fam.experiment,
        tasks: fam.tasks,
        hasReferences: fam.hasReferences,
        rows,
        ...withOrder(paperRankCorrelation(data)),
      });
    const g = hyperGrid(fam.results);
    if (g.smax.length * g.c.length > 1)
      robustness.push({
        family: fam.description,
        experiment: fam.experiment,
        tasks: g.tasks,
        metric: g.metric,
        smax: g.smax,
        c: g.c,
        z: g.z,
        seeds: g.seeds,
      });
  }
  const usage = complete.filter((l) => l.result.extras.gateLog).flatMap((l) => usageRow(l.result, l.file) ?? []);
  const compression = compressionRows(compressionSeries(results));
  return { dir, runs, failures, tables, robustness, usage, compression, problems };
}

/**
 * What each complete run would have taken on an otherwise idle machine, in seconds, estimated from the epoch
 * times the result files record: a machine shared with other work (benchmarks, tests, a third process) slows
 * every epoch, and runs of the same workload (experiment, approach, network and its size, task position,
 * training and validation samples, batch size) do the same work per epoch, so the fastest of them shows the
 * unshared speed. Each task's time is scaled by that fastest median epoch time over its own median; tasks
 * without an epoch log count as measured. Parallel workers on the same cores still share them: this removes other load only.
 */
export function unloadedSeconds(results: readonly RunResult[]): number[] {
  const workload = (r: RunResult, t: number) => {
    const task = r.data.tasks[t];
    const p = r.config.protocol;
    const net = [JSON.stringify(r.config.network), r.network?.parameters];
    return [p.experiment, r.config.approach, ...net, t, task?.train, task?.valid, p.train.batchSize].join('|');
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const medians = results.map((r) =>
    r.epochs.map((log) => (log?.epochs.length ? median(log.epochs.map((e) => e.seconds)) : undefined)),
  );
  const fastest = new Map<string, number>();
  results.forEach((r, i) =>
    medians[i].forEach((m, t) => {
      if (m === undefined) return;
      const k = workload(r, t);
      fastest.set(k, Math.min(fastest.get(k) ?? Infinity, m));
    }),
  );
  return results.map((r, i) =>
    r.timings.perTask.reduce((sum, seconds, t) => {
      const own = medians[i][t];
      return sum + (own ? (seconds * fastest.get(workload(r, t))!) / own : seconds);
    }, 0),
  );
}

// --- output ---

const cell = (m: MeanStd | undefined, digits = 2, scale = 1): string =>
  !m || !m.n || !Number.isFinite(m.mean)
    ? '-'
    : `${(scale * m.mean).toFixed(digits)} (${(scale * m.std).toFixed(digits)})`;

const VARIANT_WORDS = { reference: 'reference code', paper: 'paper method' } as const;

/** Table 1 rows as flat records (text and CSV). */
export function tableRecords(t: TableSection): Record<string, string | number>[] {
  return t.rows.map((r) => ({
    approach: r.label,
    variant: r.variant ? VARIANT_WORDS[r.variant] : '',
    seeds: r.seeds.length,
    [`A<=${t.tasks} %`]: cell(r.accuracy, 1),
    ...(t.tasks > 2 ? { 'rho<=2': cell(r.rho2) } : {}),
    [`rho<=${t.tasks}`]: cell(r.rhoT),
    BWT: cell(r.bwt),
    FWT: cell(r.fwt),
    ...(t.experiment === 'mixture'
      ? { 'paper rho<=2': r.paper?.rho2 ?? '', 'paper rho<=8': r.paper?.rho8 ?? '' }
      : { paper: r.paper?.final ?? '' }),
  }));
}

export function runRecords(s: ResultsSummary): Record<string, string | number>[] {
  return s.runs.map((c) => ({
    grid: c.grid,
    scale: c.scale,
    found: c.found,
    complete: c.complete,
    partial: c.partial,
    running: c.running,
    failed: c.failed,
    missing: c.missing ?? '-',
    'run hours': Number(c.hours.toFixed(2)),
    'idle hours (est.)': Number(c.idleHours.toFixed(2)),
  }));
}

export function robustnessRecords(g: RobustnessSection): Record<string, string | number>[] {
  return g.c.map((c, i) => ({
    c,
    ...Object.fromEntries(g.smax.map((s, j) => [`smax=${s}`, g.z[i][j] === null ? '-' : g.z[i][j]!.toFixed(3)])),
  }));
}

export function usageRecords(rows: UsageRow[]): Record<string, string | number>[] {
  return rows.map((u) => ({
    run: path.basename(u.file, '.json'),
    'usage % after each task': u.totalAfterTask.map((x) => x.toFixed(1)).join(' '),
    'final per layer %': u.perLayer.map((l) => `${l.layer} ${l.percent.toFixed(1)}`).join(', '),
  }));
}

/** A text table: first column left-aligned, the rest right-aligned. */
export function textTable(records: Record<string, string | number | null>[]): string {
  if (!records.length) return '';
  const header = Object.keys(records[0]);
  const rows = records.map((r) => header.map((h) => (r[h] === null || r[h] === undefined ? '-' : String(r[h]))));
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || i === 1 ? c.padEnd(w[i]) : c.padStart(w[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

export function csvTable(records: Record<string, string | number | null>[]): string {
  if (!records.length) return '';
  const header = Object.keys(records[0]);
  const esc = (v: string | number | null | undefined) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [header.map(esc).join(','), ...records.map((r) => header.map((h) => esc(r[h])).join(','))].join('\n') + '\n';
}

export const SUMMARY_TABLES = ['runs', 'table1', 'robustness', 'usage', 'compression', 'failures'] as const;
export type SummaryTable = (typeof SUMMARY_TABLES)[number];

/** One table of the summary as records (CSV output); several families get a `family` column. */
export function summaryRecords(s: ResultsSummary, table: SummaryTable): Record<string, string | number | null>[] {
  const withFamily = <T extends { family: string }>(
    sections: T[],
    f: (x: T) => Record<string, string | number | null>[],
  ) => sections.flatMap((x) => f(x).map((r) => ({ family: x.family, ...r })));
  switch (table) {
    case 'runs':
      return runRecords(s);
    case 'table1':
      return withFamily(s.tables, tableRecords);
    case 'robustness':
      return withFamily(s.robustness, robustnessRecords);
    case 'usage':
      return usageRecords(s.usage);
    case 'compression':
      return s.compression;
    case 'failures':
      return s.failures.map((f) => ({ ...f }));
  }
}

export const METRICS_NOTE =
  'rho = forgetting ratio (0: as good as joint training, -1: random), mean (population std) over seeds.\n' +
  'BWT = mean over u < T of acc[T][u] - acc[u][u] (backward transfer; negative = forgetting).\n' +
  'FWT = mean over u of acc[u][u] - joint acc[u][u] of the same seed (how well each task is learnt when it comes,\n' +
  "relative to joint training; our variant: the heads of tasks not yet learnt are untrained, so Lopez-Paz & Ranzato's\n" +
  'FWT, accuracy before learning a task, would measure nothing).';

export function summaryText(s: ResultsSummary): string {
  const out: string[] = [];
  out.push(`Results in ${s.dir}`, '', textTable(runRecords(s)) || '(no result files)');
  for (const c of s.runs)
    if (c.missingNames?.length)
      out.push(
        `missing from ${c.grid}: ${c.missingNames.slice(0, 8).join(', ')}${c.missingNames.length > 8 ? `, ... (${c.missingNames.length})` : ''}`,
      );
  if (s.failures.length) {
    out.push('', 'Failed runs (NAME.failed.json; `hat grid ... --retry-failed` reruns them):');
    for (const f of s.failures) out.push(`  ${f.name} (${f.grid}, attempt ${f.attempt}): ${f.error}`);
  }
  for (const t of s.tables) {
    out.push(
      '',
      `Table 1: ${t.family}${t.hasReferences ? '' : ' (some seeds lack their random/joint references: no rho)'}`,
    );
    out.push(textTable(tableRecords(t)));
    if (t.paperOrder)
      out.push(
        `Order of the methods against the paper's (our rho<=${t.tasks}, its rho<=8): Spearman ${t.paperOrder.spearman.toFixed(2)} over ${t.paperOrder.n} approaches (1: the same order).`,
      );
  }
  if (s.tables.length) out.push('', METRICS_NOTE);
  for (const g of s.robustness) {
    out.push(
      '',
      `Robustness (Fig. 4): ${g.metric === 'rho' ? `rho<=${g.tasks}` : `A<=${g.tasks} %`} per c (rows) x smax, mean over seeds ${g.seeds.join(',')} (those every cell has); ${g.family}`,
    );
    out.push(textTable(robustnessRecords(g)));
  }
  if (s.usage.length)
    out.push('', "HAT's weight usage (Fig. 5, cumulative attention):", textTable(usageRecords(s.usage)));
  if (s.compression.length)
    out.push('', 'Compression (Fig. 7): weights kept and accuracy per dataset', textTable(s.compression));
  if (s.problems.length) out.push('', ...s.problems.map((p) => `skipped: ${p}`));
  return out.join('\n');
}

/**
 * One view of a whole grid: how many runs are done, running, failed, partial (interrupted, will resume) and
 * queued, with an ETA from measured run times (median wall time of finished runs of the same kind: same
 * experiment, approach and protocol options). On a terminal a block redrawn in place; otherwise (pipes, CI)
 * a line per finished or failed run and a status line every `interval` seconds. No TensorFlow.
 */
import type { ProgressMode } from '../training/progress';
import { fmtTime } from '../training/progress';
import type { GridRun } from './expand';
import { canonicalJson } from './run-id';
import { RUN_STATES, type RunState, type RunStatus } from './state';

/** Runs that should take about as long: same experiment, approach and protocol options (not seed or parameters). */
export function runKind(r: GridRun): string {
  const o = r.run;
  return canonicalJson([o.experiment, o.approach, o.train, o.tasks, o.datasets, o.maxTrain, o.maxTest, o.hidden]);
}

const median = (xs: number[]): number | undefined => {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const seconds = (s: RunStatus): number | undefined => s.result?.wallSeconds ?? s.result?.seconds;

export interface Estimate {
  /** Seconds until every run is done at the current number of workers (undefined: nothing measured yet). */
  eta?: number;
  /** Runs whose time is guessed from other kinds of runs. */
  guessed: number;
}

/**
 * ETA: each unfinished run costs the median wall time of finished runs of its kind (else of its approach and
 * experiment, else of all finished runs); a running run its remaining part. Spread over `workers`.
 */
export function estimate(
  runs: readonly GridRun[],
  status: ReadonlyMap<string, RunStatus>,
  workers: number,
  now = Date.now(),
): Estimate {
  const byKind = new Map<string, number[]>();
  const byApproach = new Map<string, number[]>();
  const all: number[] = [];
  for (const r of runs) {
    const s = status.get(r.id);
    const t = s?.state === 'done' ? seconds(s) : undefined;
    if (t === undefined) continue;
    const k = runKind(r);
    const a = `${r.run.experiment}/${r.run.approach}`;
    byKind.set(k, [...(byKind.get(k) ?? []), t]);
    byApproach.set(a, [...(byApproach.get(a) ?? []), t]);
    all.push(t);
  }
  const fallback = median(all);
  let total = 0;
  let guessed = 0;
  for (const r of runs) {
    const s = status.get(r.id);
    if (!s || s.state === 'done' || s.state === 'failed' || s.state === 'conflict') continue;
    let per = median(byKind.get(runKind(r)) ?? []);
    if (per === undefined) {
      per = median(byApproach.get(`${r.run.experiment}/${r.run.approach}`) ?? []) ?? fallback;
      guessed++;
    }
    if (per === undefined) return { guessed };
    if (s.state === 'running' && s.lock) {
      const elapsed = (now - Date.parse(s.lock.started)) / 1000;
      total += Math.max(per - elapsed, 0.1 * per);
    } else if (s.state === 'partial' && s.result && s.result.tasks > 0) {
      total += per * (1 - s.result.tasksDone / s.result.tasks);
    } else total += per;
  }
  return { eta: total / Math.max(1, workers), guessed };
}

export function countStates(
  runs: readonly GridRun[],
  status: ReadonlyMap<string, RunStatus>,
): Record<RunState, number> {
  const counts = Object.fromEntries(RUN_STATES.map((s) => [s, 0])) as Record<RunState, number>;
  for (const r of runs) counts[status.get(r.id)?.state ?? 'queued']++;
  return counts;
}

export function statusLine(
  name: string,
  runs: readonly GridRun[],
  status: ReadonlyMap<string, RunStatus>,
  workers: number,
  elapsed: number,
  now = Date.now(),
): string {
  const c = countStates(runs, status);
  const parts = RUN_STATES.filter((s) => c[s] > 0 || s === 'done' || s === 'queued').map((s) => `${c[s]} ${s}`);
  const e = estimate(runs, status, workers, now);
  const left = c.queued + c.running + c.partial;
  const eta = left === 0 ? '' : e.eta === undefined ? ', ETA ? (no run finished yet)' : `, ETA ${fmtTime(e.eta)}`;
  return `${name}: ${runs.length} runs: ${parts.join(', ')}; elapsed ${fmtTime(elapsed)}${eta}`;
}

export class GridProgressView {
  private readonly tty: boolean;
  private drawn = 0;
  private lastLine = 0;
  private readonly seen = new Map<string, RunState>();
  private readonly started = Date.now();

  constructor(
    private readonly name: string,
    private readonly runs: readonly GridRun[],
    private readonly workers: number,
    private readonly mode: ProgressMode = 'auto',
    private readonly interval = 60,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = mode === 'bar' || (mode === 'auto' && !!stream.isTTY && !process.env.CI);
  }

  /** Draws the view for the current states (a terminal redraws; otherwise lines for what changed). */
  update(status: ReadonlyMap<string, RunStatus>, now = Date.now()): void {
    if (this.mode === 'quiet') return;
    const elapsed = (now - this.started) / 1000;
    const head = statusLine(this.name, this.runs, status, this.workers, elapsed, now);
    const changes: string[] = [];
    for (const r of this.runs) {
      const s = status.get(r.id);
      if (!s) continue;
      const before = this.seen.get(r.id);
      this.seen.set(r.id, s.state);
      if (before === undefined || before === s.state) continue;
      if (s.state === 'done') changes.push(`done    ${r.name}${s.result ? ` (${fmtTime(seconds(s) ?? 0)})` : ''}`);
      if (s.state === 'failed') changes.push(`FAILED  ${r.name}: ${s.failed?.error.split('\n')[0] ?? ''}`);
    }
    if (this.tty) {
      const running = this.runs
        .filter((r) => status.get(r.id)?.state === 'running')
        .map((r) => {
          const s = status.get(r.id)!;
          const task = s.result ? `task ${Math.min(s.result.tasksDone + 1, s.result.tasks)}/${s.result.tasks}, ` : '';
          const since = s.lock ? fmtTime((now - Date.parse(s.lock.started)) / 1000) : '?';
          return `  running ${r.name} (${task}${since}, ${s.lock?.host}:${s.lock?.pid})`;
        });
      const block = [
        head,
        ...running.slice(0, 12),
        ...(running.length > 12 ? [`  ... ${running.length - 12} more`] : []),
      ];
      let out = this.drawn ? `\x1b[${this.drawn}A\x1b[0J` : '';
      out += changes.map((c) => `${c}\n`).join('');
      out += block.map((l) => `${l}\n`).join('');
      this.stream.write(out);
      this.drawn = block.length;
    } else {
      for (const c of changes) this.stream.write(`${c}\n`);
      if (now - this.lastLine >= this.interval * 1000) {
        this.stream.write(`${head}\n`);
        this.lastLine = now;
      }
    }
  }

  /** The final status line (always printed, except when quiet). */
  finish(status: ReadonlyMap<string, RunStatus>, now = Date.now()): void {
    if (this.mode === 'quiet') return;
    this.lastLine = 0;
    if (this.tty) {
      this.update(status, now);
      return;
    }
    this.update(status, now);
  }
}

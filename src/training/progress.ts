/**
 * Progress of a run, as a callback: a live bar (task, epoch, batch, loss, lr, ETA) on a terminal; on a pipe
 * or in CI one line per finished task, or nothing when quiet.
 */
import cliProgress from 'cli-progress';
import type { Callback, EpochStartEvent, RunStartEvent, TaskEndEvent } from './callbacks';

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'quiet';
export const PROGRESS_MODES: readonly ProgressMode[] = ['auto', 'bar', 'lines', 'quiet'];

/** A progress display: a training callback that can also print a message of its own. */
export interface Progress extends Callback {
  log(message: string): void;
}

export function createProgress(mode: ProgressMode = 'auto', stream: NodeJS.WriteStream = process.stderr): Progress {
  const resolved = mode === 'auto' ? (stream.isTTY && !process.env.CI ? 'bar' : 'lines') : mode;
  if (resolved === 'bar') return new BarProgress(stream);
  return new LineProgress(stream, resolved === 'quiet');
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 59.95) return `${s.toFixed(1)}s`;
  // whole seconds first, so that 2579.6 s is 43m00s, not 42m60s
  const r = Math.round(s);
  const m = Math.floor(r / 60);
  if (m >= 60) return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
  return `${m}m${String(r % 60).padStart(2, '0')}s`;
}

const headerLine = (e: RunStartEvent): string =>
  e.firstTask > 0 ? `${e.header} (resuming after task ${e.firstTask}/${e.experiment.tasks.length})` : e.header;

function taskLine(e: TaskEndEvent): string {
  const acc = e.accuracy.slice(0, e.t + 1).map((a) => (100 * a).toFixed(1));
  return `task ${e.t + 1}/${e.tasks.length} ${e.tasks[e.t].name}: ${e.log.epochs.length} epochs, ${fmtTime(e.log.trainSeconds)}; test acc % [${acc.join(' ')}]`;
}

class LineProgress implements Progress {
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly quiet: boolean,
  ) {}
  onRunStart(e: RunStartEvent): void {
    this.log(headerLine(e));
  }
  onTaskEnd(e: TaskEndEvent): void {
    this.log(taskLine(e));
  }
  log(message: string): void {
    if (!this.quiet) this.stream.write(message + '\n');
  }
}

class BarProgress implements Progress {
  private readonly bar: cliProgress.SingleBar;
  private lossAt = 0;
  private started = false;
  constructor(private readonly stream: NodeJS.WriteStream) {
    this.bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          'task {task}/{tasks} {taskName} | epoch {epoch} | {bar} {value}/{total} batches | loss {loss} | lr {lr} | epoch ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
  }
  onRunStart(e: RunStartEvent): void {
    this.log(headerLine(e));
  }
  onEpochStart(i: EpochStartEvent): void {
    const payload = {
      task: i.t + 1,
      tasks: i.tasks.length,
      taskName: i.tasks[i.t].name,
      epoch: `${i.epoch}/${i.maxEpochs}`,
      loss: '-',
      lr: i.lr.toPrecision(3),
    };
    if (this.started) {
      this.bar.setTotal(i.batches);
      this.bar.update(0, payload);
    } else {
      this.bar.start(i.batches, 0, payload);
      this.started = true;
    }
  }
  onBatchEnd(e: { batch: number; loss: { dataSync(): ArrayLike<number> } }): void {
    // reading the loss waits for the device: at most four times a second
    if (Date.now() - this.lossAt > 250) {
      this.lossAt = Date.now();
      this.bar.update(e.batch, { loss: e.loss.dataSync()[0].toFixed(4) });
    } else this.bar.update(e.batch);
  }
  onTaskEnd(e: TaskEndEvent): void {
    this.log(taskLine(e));
  }
  onRunEnd(): void {
    this.close();
  }
  log(message: string): void {
    this.close();
    this.stream.write(message + '\n');
  }
  close(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}

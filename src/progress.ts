/**
 * Progress of long work: a live bar (task, epoch, batch, loss, ETA) on a terminal; on a pipe or in CI
 * one line per finished task, or nothing when quiet.
 */
import cliProgress from 'cli-progress';

export interface ProgressReporter {
  /** Is a per-batch loss value wanted now? (reading one forces a device sync, so it is throttled). */
  wantsLoss(): boolean;
  startEpoch(info: { task: number; tasks: number; taskName: string; epoch: number; maxEpochs: number; batches: number; lr: number }): void;
  batch(done: number, loss?: number): void;
  endEpoch(info: { trainLoss: number; validLoss: number; best: boolean; seconds: number }): void;
  endTask(info: { task: number; tasks: number; taskName: string; epochs: number; seconds: number; accuracies: number[] }): void;
  log(message: string): void;
  stop(): void;
}

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'quiet';

export function createProgress(mode: ProgressMode = 'auto', stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const resolved = mode === 'auto' ? (stream.isTTY && !process.env.CI ? 'bar' : 'lines') : mode;
  if (resolved === 'bar') return new BarProgress(stream);
  return new LineProgress(stream, resolved === 'quiet');
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}

class LineProgress implements ProgressReporter {
  constructor(private readonly stream: NodeJS.WriteStream, private readonly quiet: boolean) {}
  wantsLoss(): boolean {
    return false;
  }
  startEpoch(): void {}
  batch(): void {}
  endEpoch(): void {}
  endTask(i: { task: number; tasks: number; taskName: string; epochs: number; seconds: number; accuracies: number[] }): void {
    if (this.quiet) return;
    const acc = i.accuracies.map((a) => (100 * a).toFixed(1)).join(' ');
    this.stream.write(`task ${i.task + 1}/${i.tasks} ${i.taskName}: ${i.epochs} epochs, ${fmtTime(i.seconds)}; test acc % [${acc}]\n`);
  }
  log(message: string): void {
    if (!this.quiet) this.stream.write(message + '\n');
  }
  stop(): void {}
}

class BarProgress implements ProgressReporter {
  private readonly bar: cliProgress.SingleBar;
  private lastLoss = 0;
  private lossAt = 0;
  private started = false;
  constructor(private readonly stream: NodeJS.WriteStream) {
    this.bar = new cliProgress.SingleBar(
      {
        stream,
        format: 'task {task}/{tasks} {taskName} | epoch {epoch} | {bar} {value}/{total} batches | loss {loss} | lr {lr} | epoch ETA {eta_formatted}',
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
  }
  wantsLoss(): boolean {
    return Date.now() - this.lossAt > 250;
  }
  startEpoch(i: { task: number; tasks: number; taskName: string; epoch: number; maxEpochs: number; batches: number; lr: number }): void {
    const payload = { task: i.task + 1, tasks: i.tasks, taskName: i.taskName, epoch: `${i.epoch}/${i.maxEpochs}`, loss: '-', lr: i.lr.toPrecision(3) };
    if (this.started) {
      this.bar.setTotal(i.batches);
      this.bar.update(0, payload);
    } else {
      this.bar.start(i.batches, 0, payload);
      this.started = true;
    }
  }
  batch(done: number, loss?: number): void {
    if (loss !== undefined) {
      this.lastLoss = loss;
      this.lossAt = Date.now();
    }
    this.bar.update(done, { loss: this.lastLoss.toFixed(4) });
  }
  endEpoch(): void {}
  endTask(i: { task: number; tasks: number; taskName: string; epochs: number; seconds: number; accuracies: number[] }): void {
    this.log(`task ${i.task + 1}/${i.tasks} ${i.taskName}: ${i.epochs} epochs, ${fmtTime(i.seconds)}; test acc % [${i.accuracies.map((a) => (100 * a).toFixed(1)).join(' ')}]`);
  }
  log(message: string): void {
    if (this.started) {
      this.bar.stop();
      this.started = false;
    }
    this.stream.write(message + '\n');
  }
  stop(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}

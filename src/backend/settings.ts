/** TensorFlow's thread and oneDNN settings (no TensorFlow import: the grid's parent process uses them too). */

/** The environment variables TensorFlow reads at start-up for its thread pools and oneDNN. */
export const NATIVE_SETTINGS_ENV = {
  intraOpThreads: 'TF_NUM_INTRAOP_THREADS',
  interOpThreads: 'TF_NUM_INTEROP_THREADS',
  onednn: 'TF_ENABLE_ONEDNN_OPTS',
} as const;
export type NativeSettings = Record<keyof typeof NATIVE_SETTINGS_ENV, string>;

export function nativeSettings(env: NodeJS.ProcessEnv = process.env): NativeSettings {
  const entries = Object.entries(NATIVE_SETTINGS_ENV).map(([k, v]) => [k, env[v] ?? 'default']);
  return Object.fromEntries(entries) as NativeSettings;
}

/**
 * Sets TensorFlow's threads (intra- and inter-op) and oneDNN through the environment, before the native
 * backend loads (it reads them once) and so that child processes (grid workers) inherit them. Measured on
 * 2 cores (bench/README.md): 1 thread trains the MLP as fast as 2, the AlexNet 1.3-1.8x slower; oneDNN off
 * costs 40% on both.
 */
export function setNativeSettings(o: { threads?: number; onednn?: boolean }): void {
  if (o.threads !== undefined) {
    process.env[NATIVE_SETTINGS_ENV.intraOpThreads] = String(o.threads);
    process.env[NATIVE_SETTINGS_ENV.interOpThreads] = String(o.threads);
  }
  if (o.onednn !== undefined) process.env[NATIVE_SETTINGS_ENV.onednn] = o.onednn ? '1' : '0';
}

/**
 * Units per layer up to which an MLP trains faster on one TensorFlow thread than on one per core (2 cores,
 * bench/README.md, "Threads"): its matmuls are too small to pay for waking TensorFlow's thread pool (~100 µs
 * per op here, more than a 64x800x800 matmul gains from a second core). Measured: the 800-unit SGD MLP 1.17x
 * as fast on 1 thread as on 2; the 2000-unit HAT MLP and the AlexNet 1.4x and 1.5x as fast on 2.
 */
export const ONE_THREAD_MLP_UNITS = 1000;

/**
 * The threads a single run (`hat run`, one network per process) gives TensorFlow when the user set none: 1 for
 * an MLP whose layers have at most ONE_THREAD_MLP_UNITS units, otherwise undefined (TensorFlow's default, one
 * per core). Not for a process that goes on to other networks (a notebook's kernel): the threads are fixed
 * when TensorFlow loads.
 */
export function runThreads(kind: 'mlp' | 'alexnet', widths: readonly number[]): number | undefined {
  return kind === 'mlp' && widths.length > 0 && Math.max(...widths) <= ONE_THREAD_MLP_UNITS ? 1 : undefined;
}

/** Sets runThreads' choice for this process unless the user set TensorFlow's threads; returns the threads set. */
export function chooseRunThreads(kind: 'mlp' | 'alexnet', widths: readonly number[]): number | undefined {
  if (process.env[NATIVE_SETTINGS_ENV.intraOpThreads] !== undefined) return undefined;
  const threads = runThreads(kind, widths);
  if (threads !== undefined) setNativeSettings({ threads });
  return threads;
}

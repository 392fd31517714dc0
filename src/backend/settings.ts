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

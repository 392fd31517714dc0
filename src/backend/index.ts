/**
 * Chooses the TensorFlow.js backend every other module computes on, and says which one runs.
 *
 * Order for `auto`: native TensorFlow with CUDA (@tensorflow/tfjs-node-gpu), native TensorFlow on the CPU
 * (@tensorflow/tfjs-node), then WebAssembly (@tensorflow/tfjs-backend-wasm, always installed, with the
 * kernels of ./wasm-kernels that make it able to train the conv nets). Override with the `--backend`
 * option or the HAT_BACKEND environment variable.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../core/errors';
import { registerGradients } from './gradients';
import { type FusedKernelsStatus, installFusedKernels } from './fused-kernels';
import { installNativeGradients } from './native-ops';
import { installNativeKernels } from './native-kernels';
import { quietly, tfLogWanted } from './quiet';
import { type NativeSettings, nativeSettings } from './settings';

export { registerGradients };
export { NATIVE_SETTINGS_ENV, type NativeSettings, nativeSettings, setNativeSettings } from './settings';

export const BACKEND_CHOICES = ['auto', 'gpu', 'native', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendInfo {
  /** The tfjs backend name: tensorflow, wasm or cpu. */
  name: string;
  /** What was asked for. */
  choice: BackendChoice;
  /** npm package and version providing it. */
  package: string;
  device: 'cpu' | 'gpu';
  /** Version of the TensorFlow C library behind the native backend. */
  libtensorflow?: string;
  tfjsCore: string;
  /** Why faster backends were not used (for the log and the result file). */
  fallbacks: string[];
  /** Native backends: the thread and oneDNN settings TensorFlow started with ('default' when not set). */
  tensorflow?: NativeSettings;
  /** Native CPU backend: whether this project's fused kernels run (same results either way; speed only). */
  fusedKernels?: FusedKernelsStatus;
}

let current: BackendInfo | undefined;

export class BackendError extends UserError {
  override name = 'BackendError';
}

function packageVersion(pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function firstLine(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  // a package that is simply not installed needs no require stack
  if (err?.code === 'MODULE_NOT_FOUND' && /^Cannot find module/.test(err.message)) return 'not installed';
  return String(err?.message ?? e).split('\n')[0];
}

/**
 * The CPU native package: @tensorflow/tfjs-node, or HAT_NATIVE_MODULE (a path or package name: a build of
 * one's own; the tests point it at broken packages to check that a failed load is reported).
 */
const nativeCpuPackage = (): string => process.env.HAT_NATIVE_MODULE || '@tensorflow/tfjs-node';

/** Loads a native package; it registers the `tensorflow` backend with tfjs-core as a side effect. */
function loadNative(pkg: string): { libtensorflow?: string } {
  if (!tfLogWanted()) process.env.TF_CPP_MIN_LOG_LEVEL ??= '2'; // TensorFlow's INFO lines are noise for users

  // a tfjs-node of another version than our tfjs-core would register its backend with its own copy
  const version = packageVersion(pkg);
  if (version !== 'unknown' && version !== tf.version_core)
    throw new BackendError(`${pkg} is version ${version}, but @tensorflow/tfjs-core is ${tf.version_core}`);
  quietly(() => void require(pkg));
  const backend = tf.findBackend('tensorflow') as unknown as { binding?: { TF_Version?: string } } | null;
  if (!backend)
    throw new BackendError(
      `${pkg} loaded but did not register the tensorflow backend (two copies of @tensorflow/tfjs-core?)`,
    );
  return { libtensorflow: backend.binding?.TF_Version };
}

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendError(`backend ${name} failed to initialise`);
  await tf.ready();
  if (name === 'tensorflow') {
    installNativeGradients();
    installNativeKernels();
  }
}

async function useWasm(): Promise<void> {
  registerGradients();

  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  wasm.setWasmPaths(dist + path.sep);
  await activate('wasm');

  (require('./wasm-kernels') as typeof import('./wasm-kernels')).installWasmTrainingKernels();
}

async function useCpu(): Promise<void> {
  registerGradients();

  require('@tensorflow/tfjs-backend-cpu');
  await activate('cpu');
}

export function parseBackendChoice(value: string | undefined): BackendChoice {
  const v = (value ?? 'auto').trim() || 'auto';
  if (!(BACKEND_CHOICES as readonly string[]).includes(v)) {
    throw new BackendError(`unknown backend '${v}'; choose one of ${BACKEND_CHOICES.join(', ')}`);
  }
  return v as BackendChoice;
}

const NATIVE_ADVICE =
  'Build it with `npm run build:native` (works offline from a pip tensorflow wheel), or use --backend wasm.';

/**
 * Selects and initialises the backend once per process; later calls return the same info
 * (tfjs-node cannot be unloaded, so switching away from it later is not supported).
 */
export async function initBackend(choice: string = process.env.HAT_BACKEND ?? 'auto'): Promise<BackendInfo> {
  const wanted = parseBackendChoice(choice);
  if (current && (current.choice === wanted || wanted === 'auto')) return current;
  const fallbacks: string[] = [];
  const info = (name: string, pkg: string, device: 'cpu' | 'gpu', lib?: string): BackendInfo => ({
    name,
    choice: wanted,
    package: `${pkg}@${packageVersion(pkg)}`,
    device,
    libtensorflow: lib,
    tfjsCore: tf.version_core,
    fallbacks,
    ...(name === 'tensorflow' ? { tensorflow: nativeSettings() } : {}),
  });

  if (wanted === 'gpu' || wanted === 'auto') {
    try {
      const { libtensorflow } = loadNative('@tensorflow/tfjs-node-gpu');
      await activate('tensorflow');
      return (current = info('tensorflow', '@tensorflow/tfjs-node-gpu', 'gpu', libtensorflow));
    } catch (e) {
      if (wanted === 'gpu')
        throw new BackendError(
          `the GPU backend is not available: ${firstLine(e)}. Build it with \`npm run build:native -- gpu\` on a machine with CUDA.`,
        );
      fallbacks.push(`@tensorflow/tfjs-node-gpu: ${firstLine(e)}`);
    }
  }
  if (wanted === 'native' || wanted === 'auto') {
    const pkg = nativeCpuPackage();
    try {
      const { libtensorflow } = loadNative(pkg);
      await activate('tensorflow');
      const fusedKernels = installFusedKernels(pkg);
      return (current = { ...info('tensorflow', pkg, 'cpu', libtensorflow), fusedKernels });
    } catch (e) {
      if (wanted === 'native')
        throw new BackendError(`the native TensorFlow backend is not available: ${firstLine(e)}. ${NATIVE_ADVICE}`);
      fallbacks.push(`${pkg}: ${firstLine(e)}`);
    }
  }
  if (wanted === 'cpu') {
    await useCpu();
    return (current = info('cpu', '@tensorflow/tfjs-backend-cpu', 'cpu'));
  }
  await useWasm();
  if (wanted === 'auto') {
    // never silently: which backend runs instead, and why the native one did not load
    process.stderr.write(
      `hat: warning: no native TensorFlow backend (${fallbacks.join('; ')}); using the WebAssembly backend instead, which trains 5-10x slower. ${NATIVE_ADVICE}\n`,
    );
  }
  return (current = info('wasm', '@tensorflow/tfjs-backend-wasm', 'cpu'));
}

export function backendInfo(): BackendInfo {
  if (!current) throw new BackendError('initBackend() has not been called');
  return current;
}

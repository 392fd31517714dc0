/**
 * `npm run bench`: in one run, side by side, with interleaved repetitions (this machine is noisy):
 *
 * - training samples/s of the full step (HAT, SGD, EWC) and evaluation samples/s, MLP and AlexNet, on the
 *   native backend (at the threads `hat run` gives each network, every core, 1 thread, oneDNN off) and on
 *   wasm (bench/steps.ts in child processes);
 * - the same HAT and SGD steps and evaluations in PyTorch (bench/torch/steps.py, in a bench-local virtual
 *   environment that bench/torch/setup.sh creates from pip's index; skipped with a message without torch);
 * - two single-thread processes at once against one two-thread process (the grid's worker default);
 * - one whole epoch of split MNIST (HAT MLP) and of a mixture task (HAT AlexNet), beside the authors' code;
 * - tensor counts and RSS before and after each.
 *
 * Prints a table and writes res/bench/bench-DATE.json with every measurement and ratio.
 *
 *   npm run bench [-- --reps 3] [--quick] [--no-torch] [--no-wasm] [--no-epochs] [--out FILE]
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FusedKernelsStatus } from '../src/backend/fused-kernels';
import { median } from './common';
import type { EpochResult } from './epoch';
import { STEP_CONFIGS, type StepResult } from './steps';
import { runThreads } from '../src/backend/settings';
import { mlpConfig } from '../src/nets/config';

const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const flag = (name: string) => process.argv.includes(name);
const value = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};

/**
 * The authors' code (joansj/hat, PyTorch) on split MNIST, measured on this machine at 2 threads (issue 11):
 * 27 ms per training batch, 7.5 ms per evaluation batch, 478 batches, two evaluation passes per epoch.
 */
export const AUTHORS_SPLIT_MNIST_EPOCH_SECONDS = (478 * 27 + 2 * 478 * 7.5) / 1000;

interface Variant {
  name: string;
  env: Record<string, string>;
  args: string[];
}

function runChild(script: string, args: string[], env: Record<string, string>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [path.join(__dirname, script), ...args], {
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{'))
        reject(new Error(`${script} ${args.join(' ')} failed (${code}): ${err.split('\n').slice(-5).join('\n')}`));
      else resolve(JSON.parse(line));
    });
  });
}

/** PyTorch in its own environment (bench/torch/setup.sh); the reason when it cannot be had. */
function torchPython(): { python?: string; why?: string } {
  const setup = spawnSync('bash', [path.join(__dirname, 'torch', 'setup.sh')], { encoding: 'utf8' });
  if (setup.status !== 0)
    return { why: (setup.stdout + setup.stderr).trim().split('\n').pop() ?? `setup.sh exited with ${setup.status}` };
  return { python: path.join(__dirname, 'torch', '.venv', 'bin', 'python') };
}

/**
 * Steps timed per configuration and repetition, the same for every backend and for PyTorch: 3 s of work or
 * more each (30 MLP steps, under a second, gave medians 20-30% apart between identical runs; 100, 1.5 s,
 * still 15%), after warm-up steps that let oneDNN create its primitives and the allocator reach its steady
 * state (with 10 of them, the same 1-thread SGD MLP step measured 8134 samples/s as a process's first
 * configuration and 9490 as another's second, in one run).
 */
const STEPS = { mlp: 200, alexnet: 40, warmup: 20 };
const QUICK_STEPS = { mlp: 4, alexnet: 2, warmup: 1 };

function runTorch(python: string, quick: boolean): Record<string, number> {
  const n = quick ? QUICK_STEPS : STEPS;
  const out = path.join(os.tmpdir(), `hat-bench-torch-${process.pid}.json`);
  const args = [
    path.join(__dirname, 'torch', 'steps.py'),
    '--reps',
    '1',
    '--threads',
    '2',
    '--out',
    out,
    ...(quick
      ? ['--quick']
      : ['--mlp-steps', String(n.mlp), '--alexnet-steps', String(n.alexnet), '--warmup', String(n.warmup)]),
  ];
  const r = spawnSync(python, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch bench failed: ${r.stderr.split('\n').slice(-5).join('\n')}`);
  const doc = JSON.parse(fs.readFileSync(out, 'utf8')) as { configs: Record<string, { median: number }> };
  fs.rmSync(out, { force: true });
  return Object.fromEntries(Object.entries(doc.configs).map(([k, v]) => [k, v.median]));
}

const stats = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), reps: xs });
type Stats = ReturnType<typeof stats>;

/**
 * The threads `hat run` gives TensorFlow for a step config's network (src/backend/settings.ts runThreads: 1 for
 * the 800-unit baseline MLP), or undefined for TensorFlow's default (one per core).
 */
function runThreadsOf(config: string): number | undefined {
  const [approach, kind] = config.split('-');
  if (kind !== 'mlp') return undefined;
  // the evaluation configs time HAT's network
  const hat = approach === 'hat' || approach === 'eval';
  return runThreads(
    'mlp',
    mlpConfig({ heads: [], hat }).layers.map((l) => l.units),
  );
}

async function main(): Promise<void> {
  const quick = flag('--quick');
  const reps = Number(value('--reps', quick ? '1' : '3'));
  const n = quick ? QUICK_STEPS : STEPS;
  const steps = ['--steps-mlp', String(n.mlp), '--steps-alexnet', String(n.alexnet), '--warmup', String(n.warmup)];
  const single = { TF_NUM_INTRAOP_THREADS: '1', TF_NUM_INTEROP_THREADS: '1' };
  // "native": each network at the threads `hat run` gives it (one per core, or 1 for a small MLP)
  const oneThread = STEP_CONFIGS.filter((c) => runThreadsOf(c) === 1).join(',');
  const everyCore = STEP_CONFIGS.filter((c) => runThreadsOf(c) === undefined).join(',');
  const variants: Variant[] = [
    { name: 'native', env: {}, args: ['--backend', 'native', '--configs', everyCore, ...steps] },
    { name: 'native', env: single, args: ['--backend', 'native', '--configs', oneThread, ...steps] },
    { name: 'native every core', env: {}, args: ['--backend', 'native', '--configs', oneThread, ...steps] },
    {
      name: 'native 1 thread',
      env: single,
      args: ['--backend', 'native', '--configs', 'hat-mlp,sgd-mlp,hat-alexnet,sgd-alexnet', ...steps],
    },
    {
      // this project's fused kernels off (src/backend/fused-kernels.ts): what they gain
      name: 'native TF ops only',
      env: { HAT_PLAIN_KERNELS: '1' },
      args: ['--backend', 'native', '--configs', 'hat-mlp,sgd-mlp,hat-alexnet,sgd-alexnet', ...steps],
    },
    {
      name: 'native oneDNN off',
      env: { TF_ENABLE_ONEDNN_OPTS: '0' },
      args: ['--backend', 'native', '--configs', 'hat-mlp,hat-alexnet', ...steps],
    },
  ];
  if (!flag('--no-wasm')) {
    // wasm is 4-6x slower: fewer steps for about the same seconds
    const wasmSteps = quick ? steps : ['--steps-mlp', '25', '--steps-alexnet', '6', '--warmup', '3'];
    variants.push({
      name: 'wasm',
      env: {},
      args: ['--backend', 'wasm', '--configs', 'hat-mlp,sgd-mlp,hat-alexnet,sgd-alexnet', ...wasmSteps],
    });
  }
  const torch = flag('--no-torch') ? { why: '--no-torch' } : torchPython();
  if (!torch.python) process.stderr.write(`PyTorch skipped: ${torch.why}\n`);

  const rates: Record<string, Record<string, number[]>> = {};
  const memory: Record<string, StepResult[]> = {};
  /** Whether this project's fused kernels ran in each variant (src/backend/fused-kernels.ts). */
  const fusedKernels: Record<string, FusedKernelsStatus | null> = {};
  const add = (variant: string, config: string, v: number) => ((rates[variant] ??= {})[config] ??= []).push(v);
  for (let rep = 1; rep <= reps; rep++) {
    for (const v of variants) {
      process.stderr.write(`rep ${rep}/${reps}: ${v.name}\n`);
      const out = (await runChild('steps.ts', v.args, v.env)) as {
        results: StepResult[];
        fusedKernels: FusedKernelsStatus | null;
      };
      fusedKernels[v.name] ??= out.fusedKernels;
      for (const r of out.results) add(v.name, r.config, r.samplesPerSecond);
      (memory[v.name] ??= []).push(...out.results);
    }
    if (torch.python) {
      process.stderr.write(`rep ${rep}/${reps}: PyTorch\n`);
      for (const [k, s] of Object.entries(runTorch(torch.python, quick)))
        add('pytorch', k.replace(/^(hat|sgd|eval)-(mlp|alexnet)$/, '$1-$2'), s);
    }
    // throughput of two single-thread processes at once (the grid's 2 workers x 1 thread) on the HAT steps
    process.stderr.write(`rep ${rep}/${reps}: 2 processes x 1 thread\n`);
    const pair = await Promise.all(
      [0, 1].map(() =>
        runChild('steps.ts', ['--backend', 'native', '--configs', 'hat-mlp,hat-alexnet', ...steps], single),
      ),
    );
    for (const c of ['hat-mlp', 'hat-alexnet']) {
      add(
        '2 processes x 1 thread (sum)',
        c,
        pair
          .map((p) => (p as { results: StepResult[] }).results.find((r) => r.config === c)!.samplesPerSecond)
          .reduce((a, b) => a + b, 0),
      );
    }
  }

  const table: Record<string, Record<string, Stats>> = {};
  for (const [variant, configs] of Object.entries(rates))
    for (const [c, xs] of Object.entries(configs)) (table[variant] ??= {})[c] = stats(xs);
  const med = (variant: string, c: string) => table[variant]?.[c]?.median;
  const ratio = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const ratios: Record<string, number | undefined> = {
    'HAT MLP step, native / PyTorch (goal >= 1.5)': ratio(med('native', 'hat-mlp'), med('pytorch', 'hat-mlp')),
    'HAT AlexNet step, native / PyTorch (goal >= 1.5)': ratio(
      med('native', 'hat-alexnet'),
      med('pytorch', 'hat-alexnet'),
    ),
    'SGD MLP step, native / PyTorch (goal >= 1.2)': ratio(med('native', 'sgd-mlp'), med('pytorch', 'sgd-mlp')),
    'SGD AlexNet step, native / PyTorch (goal >= 1.2)': ratio(
      med('native', 'sgd-alexnet'),
      med('pytorch', 'sgd-alexnet'),
    ),
    'HAT MLP step, fused kernels gain (native / TF ops only)': ratio(
      med('native', 'hat-mlp'),
      med('native TF ops only', 'hat-mlp'),
    ),
    'HAT AlexNet step, fused kernels gain (native / TF ops only)': ratio(
      med('native', 'hat-alexnet'),
      med('native TF ops only', 'hat-alexnet'),
    ),
    'MLP evaluation, native / PyTorch': ratio(med('native', 'eval-mlp'), med('pytorch', 'eval-mlp')),
    'AlexNet evaluation, native / PyTorch': ratio(med('native', 'eval-alexnet'), med('pytorch', 'eval-alexnet')),
    'HAT AlexNet step, wasm / native (goal >= 0.3)': ratio(med('wasm', 'hat-alexnet'), med('native', 'hat-alexnet')),
    'HAT MLP: 2 processes x 1 thread / 1 process x 2 threads': ratio(
      med('2 processes x 1 thread (sum)', 'hat-mlp'),
      med('native', 'hat-mlp'),
    ),
    'HAT AlexNet: 2 processes x 1 thread / 1 process x 2 threads': ratio(
      med('2 processes x 1 thread (sum)', 'hat-alexnet'),
      med('native', 'hat-alexnet'),
    ),
  };

  let epochs: { reps: EpochResult[][]; splitMnistSeconds?: Stats; authorsSeconds: number } | undefined;
  if (!flag('--no-epochs')) {
    const runs: EpochResult[][] = [];
    for (let rep = 1; rep <= (quick ? 1 : Math.min(reps, 2)); rep++) {
      process.stderr.write(`epochs ${rep}\n`);
      runs.push(
        (
          (await runChild('epoch.ts', ['--backend', 'native', '--which', quick ? 'mnist2' : 'both'], {})) as {
            results: EpochResult[];
          }
        ).results,
      );
    }
    const split = runs.map((r) => r.find((e) => e.setup === 'mnist2')!.seconds);
    epochs = { reps: runs, splitMnistSeconds: stats(split), authorsSeconds: AUTHORS_SPLIT_MNIST_EPOCH_SECONDS };
    ratios['split-MNIST HAT epoch, authors / ours (goal >= 2)'] = AUTHORS_SPLIT_MNIST_EPOCH_SECONDS / median(split);
  }

  // the table
  const configs = [
    'hat-mlp',
    'sgd-mlp',
    'ewc-mlp',
    'eval-mlp',
    'hat-alexnet',
    'sgd-alexnet',
    'ewc-alexnet',
    'eval-alexnet',
  ];
  const cols = Object.keys(table);
  const cell = (s?: Stats) => (s ? `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})` : '-');
  const w = [14, ...cols.map((c) => Math.max(c.length, 17))];
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  console.log(`samples/s, median (min-max) over ${reps} interleaved rep(s); batch 64 (evaluation 512)`);
  console.log(line(['config', ...cols]));
  for (const c of configs) console.log(line([c, ...cols.map((v) => cell(table[v][c]))]));
  console.log('');
  for (const [k, v] of Object.entries(ratios)) console.log(`${k.padEnd(62)} ${v === undefined ? '-' : v.toFixed(2)}`);
  const native = fusedKernels.native;
  if (native && !native.active)
    console.log(`fused kernels not active in the native runs (${native.reason}): TensorFlow's own ops were timed`);
  if (epochs?.splitMnistSeconds)
    console.log(
      `split-MNIST HAT epoch (the second; steady state): ours ${epochs.splitMnistSeconds.median.toFixed(1)} s, the authors' code ${AUTHORS_SPLIT_MNIST_EPOCH_SECONDS.toFixed(1)} s`,
    );
  for (const e of epochs?.reps.at(-1) ?? [])
    console.log(
      `  ${e.setup} ${e.task}: ${e.trainSamples} samples, ${e.seconds.toFixed(1)} s (first epoch ${e.firstEpochSeconds.toFixed(1)} s); tensors ${e.tensorsBefore} -> ${e.tensorsAfter}, RSS ${e.rssBeforeMb.toFixed(0)} -> ${e.rssAfterMb.toFixed(0)} MB`,
    );
  if (epochs && !epochs.reps.at(-1)?.some((e) => e.setup === 'mixture'))
    console.log(
      '  mixture epoch skipped: CIFAR10 is not in the data folders (HAT_DATA_DIR=../shared/dat npm run bench)',
    );

  const file = value(
    '--out',
    path.join(ROOT, 'res', 'bench', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
  );
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const cpus = os.cpus();
  fs.writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        cpu: cpus[0]?.model,
        cores: cpus.length,
        node: process.version,
        reps,
        quick,
        torch: torch.python ? 'yes' : torch.why,
        fusedKernels,
        table,
        ratios,
        epochs,
        memory,
      },
      null,
      1,
    ),
  );
  console.log(`\nwrote ${path.relative(ROOT, file)}`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    process.exit(1);
  });
}

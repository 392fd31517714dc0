import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type RunResult, readResult } from '../src/runs/result-file';
import type { CompressionExtras, GateLogExtras } from '../src/runs/monitors';
import { ONE_THREAD_MLP_UNITS, runThreads } from '../src/backend/settings';

const root = path.resolve(__dirname, '..');
function hat(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(path.join(root, 'bin', 'hat'), args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('unknown values stop with a clear message and a non-zero exit code', () => {
  let r = hat(['run', '-e', 'nosuch', '-a', 'hat']);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /argument 'nosuch' is invalid\. Allowed choices are mnist2, pmnist, cifar, mixture/);
  r = hat(['run', '-e', 'mnist2', '-a', 'hat', '-p', 'smox=3']);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /approach hat has no parameter 'smox'; its parameters: smax, c, schedule, embeddingInit, evalScale, clipNorm/,
  );
  r = hat(['run', '-e', 'mnist2', '-a', 'hat', '-p', 'smax=big']);
  assert.equal(r.code, 2);
  assert.match(r.err, /parameter smax of approach hat \(-p smax=\.\.\.\) must be a number > 0, got 'big'/);
  r = hat(['run', '-e', 'mnist2', '-a', 'hat', '-p', 'c=-1']);
  assert.equal(r.code, 2);
  assert.match(r.err, /parameter c of approach hat \(-p c=\.\.\.\) must be a number >= 0, got '-1'/);
  assert.doesNotMatch(r.err, /    at /, 'no stack trace');
  r = hat(['run', '-e', 'mnist2', '-a', 'hat', '--nepochs', '0']);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /--nepochs must be an integer >= 1/);
  r = hat(['run', '-e', 'mnist2', '-a', 'hat', '--bogus']);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /unknown option '--bogus'/);
  r = hat(['run', '-e', 'cifar', '-a', 'sgd', '--data-dir', os.tmpdir()]);
  assert.equal(r.code, 2);
  assert.match(r.err, /needs cifar10 and cifar100.*hat data get cifar10/s);
  assert.doesNotMatch(r.err, /    at /, 'no stack trace');
});

test('hat run trains, prints the summary, writes the result files; hat table reads them', () => {
  const resDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-cli-'));
  const common = [
    '-e',
    'mnist2',
    '--hidden',
    '32',
    '--max-train',
    '500',
    '--max-test',
    '300',
    '--nepochs',
    '2',
    '--res-dir',
    resDir,
  ];
  for (const a of ['random', 'joint', 'hat']) {
    const r = hat(['run', '-a', a, ...common]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`mnist2\\s+${a}\\s+0\\s+2`));
  }
  assert.ok(fs.existsSync(path.join(resDir, 'mnist2_hat_0.json')));
  // a run of so small an MLP gives TensorFlow one thread (faster there), and says so in the result file
  const env = (readResult(path.join(resDir, 'mnist2_hat_0.json')) as RunResult).environment.backend;
  if (env.name === 'tensorflow' && process.env.TF_NUM_INTRAOP_THREADS === undefined)
    assert.equal(env.tensorflow?.intraOpThreads, '1');
  assert.match(
    fs.readFileSync(path.join(resDir, 'mnist2_hat_0.txt'), 'utf8'),
    /^\d\.\d{4}\t0\.0000\n\d\.\d{4}\t\d\.\d{4}\n$/,
  );
  const t = hat(['table', '--res-dir', resDir]);
  assert.equal(t.code, 0, t.err);
  const hatRow = t.out.split('\n').find((l) => /mnist2\s+hat\s/.test(l));
  assert.ok(hatRow, t.out);
  assert.match(hatRow, /-?\d\.\d{3}\s+-?\d\.\d{3}/, 'forgetting ratios filled in');
  const empty = hat(['table', '--res-dir', path.join(resDir, 'none')]);
  assert.equal(empty.code, 2);
  assert.match(empty.err, /no complete result files/);
});

test('a single run gives TensorFlow one thread for an MLP up to ONE_THREAD_MLP_UNITS wide, else every core', () => {
  assert.equal(runThreads('mlp', [800, 800, 800]), 1);
  assert.equal(runThreads('mlp', [32]), 1);
  assert.equal(runThreads('mlp', [ONE_THREAD_MLP_UNITS + 1, 10]), undefined);
  assert.equal(runThreads('mlp', [2000, 2000]), undefined);
  assert.equal(runThreads('alexnet', [64, 128, 256, 2048, 2048]), undefined);
});

test('hat backend reports the backend; CI runs on native TensorFlow', () => {
  const r = hat(['backend']);
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out) as { name: string; package: string };
  if (process.env.CI) assert.equal(info.name, 'tensorflow', `CI must run on the native backend, got ${r.out}`);
  assert.ok(['tensorflow', 'wasm', 'cpu'].includes(info.name));
  const bad = hat(['backend'], { HAT_BACKEND: 'tpu' });
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown backend 'tpu'; choose one of auto, gpu, native, wasm, cpu/);
});

test("--tf-threads and --onednn reach TensorFlow's environment and are recorded with the backend", () => {
  const r = hat(['--tf-threads', '1', '--onednn', 'off', 'backend']);
  assert.equal(r.code, 0, r.err);
  const info = JSON.parse(r.out) as { name: string; tensorflow?: Record<string, string> };
  if (info.name === 'tensorflow')
    assert.deepEqual(info.tensorflow, { intraOpThreads: '1', interOpThreads: '1', onednn: '0' });
  const bad = hat(['--tf-threads', '0', 'backend']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--tf-threads must be an integer >= 1/);
  assert.match(hat(['--onednn', 'maybe', 'backend']).err, /Allowed choices are on, off/);
});

test('hat run --monitor gates writes the per-epoch gate log into the result file; --help lists every parameter with its range', () => {
  const resDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-cli-monitor-'));
  const r = hat([
    'run',
    '-e',
    'mnist2',
    '-a',
    'hat',
    '--hidden',
    '32',
    '--max-train',
    '300',
    '--max-test',
    '100',
    '--nepochs',
    '2',
    '--res-dir',
    resDir,
    '--progress',
    'quiet',
    '--monitor',
    'gates,compression',
  ]);
  assert.equal(r.code, 0, r.err);
  const result = readResult(path.join(resDir, 'mnist2_hat_0.json')) as RunResult & {
    extras: { gateLog: GateLogExtras; compression: CompressionExtras };
  };
  assert.equal(
    result.extras.gateLog.epochs.length,
    6,
    'per task: the gates before training (epoch 0) and after each of 2 epochs',
  );
  assert.equal(result.extras.compression.epochs.length, 6);
  assert.equal(result.extras.gateLog.cumulativeBefore.length, 2);
  const bad = hat(['run', '-e', 'mnist2', '-a', 'hat', '--monitor', 'weights']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--monitor: unknown log 'weights'; choose from gates, compression/);
  const help = hat(['run', '--help']);
  assert.match(
    help.out,
    /smax=400\s+stability: largest gate scale s \(a number > 0; spec grid 25, 50, 100, 200, 400, 800\)/,
  );
  assert.match(help.out, /merge=true\s+apply the Fisher-weighted merge/);
});

test('hat quick: every approach asked for as one grid of workers, the table with forgetting ratios, resumable', () => {
  const res = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-quick-'));
  const args = ['quick', '--tasks', '2', '--max-train', '200', '--max-test', '100', '--nepochs', '1', '--hidden', '16'];
  const r = hat([...args, '--res-dir', res, '--approaches', 'hat,sgd,random,joint', '--workers', '2']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /hat quick: 4 runs \(4 to do\) into .* with 2 workers, 1 TensorFlow threads each/);
  for (const a of ['random', 'joint', 'hat', 'sgd'])
    assert.match(r.out, new RegExp(`^pmnist\\s+${a}\\s+0\\s+2\\s`, 'm'));
  // the ratios come from the references found beside the runs: joint is 0 by definition
  assert.match(r.out, /^pmnist\s+joint\s+0\s+2\s+[\d.]+\s+0\.000\s+0\.000/m);
  const hatResult = readResult(path.join(res, 'pmnist_hat_0.json'));
  assert.ok(hatResult.forgetting === undefined || hatResult.forgetting.meanUpTo.length === 2);
  const again = hat([...args, '--res-dir', res, '--approaches', 'hat,sgd,random,joint']);
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, /4 runs \(0 to do\) .* with 1 worker\n/);
  assert.match(again.out, /^pmnist\s+hat\s+0\s+2\s/m);
  fs.rmSync(res, { recursive: true, force: true });
});

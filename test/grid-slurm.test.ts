/**
 * `hat grid --slurm` against a real Slurm (scripts/slurm: one node on 127.0.0.1, started in before() and
 * stopped in after()): the job-array script passes `sbatch --test-only`, `--submit` runs every pending run
 * of a tiny grid as an array task into one results folder, and a requeued task resumes its run from the
 * checkpoint. Needs root (and apt the first time); elsewhere the test is skipped, in CI it fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makePlan } from '../src/grid/expand';
import { readGridFile } from '../src/grid/schema';
import { glanceResult, readEvents } from '../src/grid/state';

const root = path.resolve(__dirname, '..');
const hatBin = path.join(root, 'bin', 'hat');
let slurmRoot = '';
let env: NodeJS.ProcessEnv = {};
let unavailable: string | undefined;

before(() => {
  if (process.getuid?.() !== 0) {
    unavailable = 'the test Slurm (scripts/slurm/up.sh) needs root';
    return;
  }
  // a short path: munge's socket path must stay short
  slurmRoot = fs.mkdtempSync('/tmp/hat-slurm-');
  const up = spawnSync('bash', [path.join(root, 'scripts', 'slurm', 'up.sh'), slurmRoot], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  if (up.status !== 0) {
    unavailable = `scripts/slurm/up.sh failed: ${up.stderr.trim().split('\n').slice(-5).join(' | ')}`;
    return;
  }
  env = { ...process.env };
  for (const m of up.stdout.matchAll(/^export (\w+)=(.*)$/gm)) env[m[1]] = m[2];
});

after(() => {
  if (slurmRoot && !unavailable)
    spawnSync('bash', [path.join(root, 'scripts', 'slurm', 'down.sh'), slurmRoot], { stdio: 'inherit' });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('hat grid --slurm --submit runs a grid as a job array; a requeued task resumes its run', async (t) => {
  if (unavailable) {
    if (process.env.CI) assert.fail(`Slurm is required in CI: ${unavailable}`);
    t.skip(unavailable);
    return;
  }
  const dir = fs.mkdtempSync('/tmp/hat-slurm-grid-');
  const file = path.join(dir, 'g.yaml');
  // run 0 is slow enough (two tasks of a few seconds) to be requeued in its second task
  fs.writeFileSync(
    file,
    'name: g\ngrids:\n' +
      '  - { experiments: [pmnist], seeds: [0], approaches: [sgd], options: { tasks: 2, nepochs: 60, patience: 100, maxTrain: 3000, maxTest: 50, hidden: [16] } }\n' +
      '  - { experiments: [mnist2], seeds: [0], approaches: [random, sgd, hat], options: { nepochs: 1, maxTrain: 130, maxTest: 50, hidden: [16] } }\n',
  );
  const res = path.join(dir, 'res');
  const plan = makePlan(readGridFile(file));
  const hat = (args: string[]) => spawnSync(hatBin, args, { cwd: root, env, encoding: 'utf8' });
  const common = [
    'grid',
    '--file',
    file,
    '--res-dir',
    res,
    '--slurm',
    '--cpus-per-task',
    '1',
    '--mem',
    '1G',
    '--time',
    '10:00',
  ];

  // the script alone, checked by Slurm without running it
  const written = hat([...common, '--slurm-out', path.join(dir, 'out')]);
  assert.equal(written.status, 0, written.stderr);
  const script = /job-array script (\S+\.sbatch)/.exec(written.stdout)?.[1];
  assert.ok(script && fs.existsSync(script), written.stdout);
  const text = fs.readFileSync(script, 'utf8');
  assert.match(text, /^#SBATCH --array=0-3$/m);
  assert.match(text, /^#SBATCH --cpus-per-task=1$/m);
  assert.match(text, /grid --worker --plan \S+\.plan\.json --res-dir \S+ --index "\$SLURM_ARRAY_TASK_ID"$/m);
  const check = spawnSync('sbatch', ['--test-only', script], { env, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stderr, /to start at/);

  const sub = hat([...common, '--submit', '--max-parallel', '2', '--slurm-out', path.join(dir, 'out')]);
  assert.equal(sub.status, 0, sub.stderr);
  const job = /submitted job (\d+)/.exec(sub.stdout)?.[1];
  assert.ok(job, sub.stdout);

  // requeue run 0 once its first task is done
  const slow = path.join(res, `${plan.runs[0].name}.json`);
  const deadline = Date.now() + 80_000;
  let requeued = false;
  while (Date.now() < deadline) {
    const g = glanceResult(slow);
    if (!requeued && g && g.tasksDone === 1) {
      execFileSync('scontrol', ['requeue', `${job}_0`], { env });
      requeued = true;
    }
    if (plan.runs.every((r) => glanceResult(path.join(res, `${r.name}.json`))?.status === 'complete')) break;
    await sleep(200);
  }
  assert.ok(requeued, 'run 0 was requeued after its first task');
  for (const r of plan.runs) {
    const g = glanceResult(path.join(res, `${r.name}.json`));
    assert.equal(g?.status, 'complete', `${r.name} complete`);
    assert.equal(g?.id, r.id);
  }
  // array tasks leave the queue shortly after their run is written
  let states = '';
  for (let i = 0; i < 50; i++) {
    states = execFileSync('squeue', ['-h', '-t', 'all', '-j', job, '-o', '%i %T'], { env, encoding: 'utf8' });
    if (states.trim().split('\n').length === 4 && !/RUNNING|PENDING|COMPLETING/.test(states)) break;
    await sleep(200);
  }
  assert.deepEqual(
    states.trim().split('\n').sort(),
    [0, 1, 2, 3].map((i) => `${job}_${i} COMPLETED`),
  );
  const log = fs.readFileSync(path.join(res, '.grid', 'logs', `${plan.runs[0].name}.log`), 'utf8');
  assert.match(log, /resuming after task 1\/2/, 'the requeued task resumed from the checkpoint');
  const events = readEvents(res).filter((e) => e.name === plan.runs[0].name);
  assert.deepEqual(
    events.map((e) => e.event),
    ['start', 'takeover', 'start', 'done'],
  );
  assert.ok(fs.readdirSync(path.join(dir, 'out')).some((f) => f === `hat-g_${job}_3.out`));
  const again = hat(common);
  assert.match(again.stdout, /no pending runs/);
});

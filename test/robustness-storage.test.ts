/**
 * Storage faults: a writer killed with SIGKILL at each point of a write (between data and rename, between a
 * checkpoint's data and manifest, between the manifest and the clean-up) and at random moments leaves the last
 * complete result and checkpoint intact, and the next write removes what the killed one left; a full disk
 * (a 64 kB tmpfs), a read-only file system (a read-only tmpfs) and a folder without permission (a writer running
 * as nobody) give one StorageError naming the folder and leave no partial file; two processes writing the same
 * results folder never corrupt each other's files, while a third reads them.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { StorageError, writeFileAtomic } from '../src/core/io';
import { loadCheckpoint } from '../src/runs/checkpoint';
import { runCli } from '../src/cli/index';
import { loadResults } from '../src/runs/loader';
import { backend } from './helpers';
import { checkDocument, versionDocument } from './storage-writer';

const root = path.resolve(__dirname, '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const writer = path.join(__dirname, 'storage-writer.ts');
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** What a folder holds after a writer: the result's version, the checkpoint's, the temporary and data files. */
function state(dir: string, name = 'result') {
  const file = path.join(dir, `${name}.json`);
  const result = fs.existsSync(file) ? checkDocument(fs.readFileSync(file, 'utf8')).version : 0;
  const ckpt = loadCheckpoint(path.join(dir, `${name}.ckpt`), 'hash');
  let checkpoint = 0;
  if (ckpt) {
    checkpoint = ckpt.manifest.tasksDone;
    assert.ok(
      ckpt.tensors.a.dataSync().every((x) => x === checkpoint),
      'the data is the manifest version',
    );
    assert.ok(ckpt.tensors.b.dataSync().every((x) => x === -checkpoint));
    assert.deepEqual(ckpt.manifest.json, { version: checkpoint });
    tf.dispose(Object.values(ckpt.tensors));
  }
  const files = fs.readdirSync(dir);
  return {
    result,
    checkpoint,
    tmp: files.filter((f) => f.endsWith('.tmp')),
    data: files.filter((f) => f.startsWith(`${name}.ckpt.`) && f.endsWith('.bin')),
  };
}

function write(dir: string, from: number, to: number, kb: number, fault = '') {
  return spawnSync(tsx, [writer, dir, String(from), String(to), String(kb)], {
    encoding: 'utf8',
    env: { ...process.env, HAT_FAULT: fault },
    timeout: 60_000,
  });
}
const killed = (r: { signal: NodeJS.Signals | null; status: number | null }) =>
  r.signal === 'SIGKILL' || r.status === 137;

describe('SIGKILL at any point', () => {
  test('at each point of a write, the last complete result and checkpoint stay whole; the next write cleans up', async () => {
    await backend();
    // writes per version: result (1 atomic write), checkpoint data (1), checkpoint manifest (1)
    const cases: [string, number, number, number][] = [
      // fault, result version then, checkpoint version then, leftover temporaries
      ['atomic-write:4', 1, 1, 1], // version 2's result written, not yet renamed
      ['atomic-write:5', 2, 1, 1], // version 2's checkpoint data written, not renamed
      ['checkpoint-data:2', 2, 1, 0], // version 2's data in place, its manifest not yet
      ['atomic-write:6', 2, 1, 1], // version 2's manifest written, not renamed
      ['checkpoint-manifest:2', 2, 2, 0], // version 2 complete, version 1's data not yet removed
    ];
    for (const [fault, result, checkpoint, leftovers] of cases) {
      const dir = tmp('hat-kill-');
      const r = write(dir, 1, 3, 64, fault);
      assert.ok(killed(r), `${fault}: killed (${r.stderr})`);
      const s = state(dir);
      assert.deepEqual([s.result, s.checkpoint, s.tmp.length], [result, checkpoint, leftovers], fault);
      // readers ignore the leftovers
      assert.deepEqual(loadResults(dir), []);
      // the next writer (the run resumed) removes them with its first writes, and older data files too
      const again = write(dir, 3, 4, 64);
      assert.equal(again.status, 0, again.stderr);
      const t = state(dir);
      assert.deepEqual(
        [t.result, t.checkpoint, t.tmp, t.data.length],
        [4, 4, [], 1],
        `${fault}: after the next writer`,
      );
    }
  });

  test('killed at random moments, a writer of large files never leaves a torn result or checkpoint', async () => {
    await backend();
    const dir = tmp('hat-kill-random-');
    let v = 1;
    for (let i = 0; i < 5; i++) {
      const child = spawn(tsx, [writer, dir, String(v), String(v + 200), '2048'], { stdio: 'ignore' });
      // start-up takes a second or two, then each version writes 2 MB and a checkpoint
      await new Promise((resolve) => setTimeout(resolve, 1800 + 97 * ((i * 37) % 11)));
      const tsxPid = child.pid!;
      for (const pid of [...descendants(tsxPid), tsxPid]) killQuietly(pid);
      await new Promise((resolve) => child.on('exit', resolve));
      const s = state(dir);
      assert.ok(s.result >= s.checkpoint - 1 && s.result <= s.checkpoint + 1, `${JSON.stringify(s)}`);
      v = Math.max(s.result, s.checkpoint, v) + 1;
    }
    const again = write(dir, v, v, 2048);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(state(dir).tmp, []);
  });
});

function descendants(pid: number): number[] {
  try {
    const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
    const kids = out.split('\n').map(Number).filter(Boolean);
    return kids.flatMap((k) => [...descendants(k), k]);
  } catch {
    return [];
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

test("stale temporary files: a dead writer's (a zombie's too) and any over a day old are removed by the next write; a live writer's stay", async () => {
  const dir = tmp('hat-stale-');
  const file = path.join(dir, 'r.json');
  const sleeper = spawn('sleep', ['30']);
  // a zombie: `sleep 0` exits and its parent, the shell turned `sleep 30`, never reaps it (as a killed writer
  // whose parent is gone stays, under an init that does not reap)
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const zombie = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (b) => resolve(String(b)))));
  for (let i = 0; i < 100 && !/\) Z/.test(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8')); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const host = os.hostname().replace(/[^\w-]/g, '_');
  const dead = 999_999_999; // no such pid
  const names = {
    dead: `r.json.${host}.${dead}.abc.tmp`,
    zombie: `r.json.${host}.${zombie}.zzz.tmp`,
    older: `r.json.${dead}.1700000000000.tmp`, // the naming before host and random
    live: `r.json.${host}.${sleeper.pid}.def.tmp`,
    otherHost: `r.json.elsewhere.${dead}.ghi.tmp`,
    ancient: `r.json.elsewhere.${dead}.jkl.tmp`,
    otherFile: `q.json.${host}.${dead}.mno.tmp`,
  };
  for (const n of Object.values(names)) fs.writeFileSync(path.join(dir, n), 'partial');
  const dayAgo = (Date.now() - 25 * 3600 * 1000) / 1000;
  fs.utimesSync(path.join(dir, names.ancient), dayAgo, dayAgo);
  writeFileAtomic(file, '{"ok":true}');
  sleeper.kill();
  parent.kill();
  assert.deepEqual(fs.readdirSync(dir).sort(), [names.live, names.otherFile, names.otherHost, 'r.json'].sort());
  assert.equal(fs.readFileSync(file, 'utf8'), '{"ok":true}');
});

describe('full, read-only and forbidden folders', () => {
  const mounts: string[] = [];
  after(() => {
    for (const m of mounts) spawnSync('umount', [m]);
  });
  /** A small tmpfs (root only); undefined when it cannot be mounted here. */
  function tmpfs(sizeKb: number, readOnly = false): string | undefined {
    const dir = tmp('hat-tmpfs-');
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k${readOnly ? ',ro' : ''}`, 'tmpfs', dir]);
    if (r.status !== 0) return undefined;
    mounts.push(dir);
    return dir;
  }
  const needRoot = (t: { skip(m: string): void }) => {
    if (process.env.CI) assert.fail('CI runs as root and can mount a tmpfs');
    t.skip('cannot mount a tmpfs here (needs root)');
  };

  test('a full disk: one StorageError naming the folder, the previous version intact, no partial file', (t) => {
    const dir = tmpfs(64);
    if (!dir) return needRoot(t);
    const file = path.join(dir, 'r.json');
    writeFileAtomic(file, versionDocument(1, 8));
    assert.throws(
      () => writeFileAtomic(file, versionDocument(2, 100)),
      (e: Error) =>
        e instanceof StorageError &&
        e.message ===
          `cannot write r.json in ${dir}: the disk is full (ENOSPC). Free some space, then run the same command again (nothing was half-written; a run resumes from its last checkpoint).`,
    );
    assert.deepEqual(fs.readdirSync(dir), ['r.json']);
    assert.equal(checkDocument(fs.readFileSync(file, 'utf8')).version, 1);
  });

  test('a run whose results folder fills up stops with that message; its last files stay readable', async (t) => {
    const dir = tmpfs(48);
    if (!dir) return needRoot(t);
    let out = '';
    let err = '';
    const code = await runCli(
      [
        'node',
        'hat',
        'run',
        '-e',
        'mnist2',
        '-a',
        'sgd',
        '--hidden',
        '32',
        '--max-train',
        '64',
        '--max-test',
        '32',
        '--nepochs',
        '1',
        '--res-dir',
        dir,
        '--progress',
        'quiet',
      ],
      { out: (s) => (out += s), err: (s) => (err += s) },
    );
    assert.equal(code, 2, out + err);
    assert.match(err, new RegExp(`^hat: cannot write mnist2_sgd_0\\.\\S+ in ${dir}: the disk is full \\(ENOSPC\\)`));
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json')))
      JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  });

  test('a read-only file system: the run stops before training, naming the folder', async (t) => {
    const dir = tmpfs(64, true);
    if (!dir) return needRoot(t);
    assert.throws(
      () => writeFileAtomic(path.join(dir, 'r.json'), '{}'),
      (e: Error) =>
        e instanceof StorageError &&
        e.message.startsWith(`cannot write r.json in ${dir}: the file system is read-only (EROFS)`),
    );
    let err = '';
    const code = await runCli(['node', 'hat', 'run', '-e', 'mnist2', '-a', 'sgd', '--res-dir', path.join(dir, 'res')], {
      out: () => undefined,
      err: (s) => (err += s),
    });
    assert.equal(code, 2);
    assert.equal(
      err,
      `hat: cannot write results in ${path.join(dir, 'res')}: the file system is read-only (EROFS). Choose a writable folder (e.g. --res-dir), then run the same command again (nothing was half-written; a run resumes from its last checkpoint).\n`,
    );
  });

  test('a folder without permission (a writer running as nobody): one message naming it', (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to run a writer as nobody');
    const dir = tmp('hat-eacces-');
    fs.chmodSync(dir, 0o755);
    const script = `const { writeFileAtomic } = require(${JSON.stringify(path.join(root, 'src/core/io.ts'))});
try { writeFileAtomic(${JSON.stringify(path.join(dir, 'r.json'))}, '{}'); } catch (e) { console.log(e.name + ': ' + e.message); }`;
    const r = spawnSync(tsx, ['-e', script], {
      encoding: 'utf8',
      uid: 65534,
      gid: 65534,
      timeout: 60_000,
      cwd: os.tmpdir(),
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout.trim(),
      `StorageError: cannot write r.json in ${dir}: no permission to write there (EACCES). Fix the permissions or choose another folder, then run the same command again (nothing was half-written; a run resumes from its last checkpoint).`,
    );
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});

test('two processes writing the same results folder (the same file and their own) never corrupt them; a reader sees only whole files', async () => {
  const dir = tmp('hat-two-writers-');
  const script = (
    name: string,
  ) => `const { writeFileAtomic } = require(${JSON.stringify(path.join(root, 'src/core/io.ts'))});
const { versionDocument } = require(${JSON.stringify(writer)});
for (let v = 1; v <= 150; v++) {
  writeFileAtomic(${JSON.stringify(path.join(dir, 'shared.json'))}, versionDocument(v, 64, '${name}'));
  writeFileAtomic(${JSON.stringify(dir)} + '/${name}.json', versionDocument(v, 64, '${name}'));
}`;
  const children: ChildProcess[] = ['a', 'b'].map((n) =>
    spawn(tsx, ['-e', script(n)], { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  const codes = children.map(
    (c) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        let err = '';
        c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        c.on('exit', (code) => resolve({ code, err }));
      }),
  );
  let reads = 0;
  let running = true;
  void Promise.all(codes).then(() => (running = false));
  while (running) {
    for (const f of ['shared.json', 'a.json', 'b.json']) {
      const p = path.join(dir, f);
      if (!fs.existsSync(p)) continue;
      checkDocument(fs.readFileSync(p, 'utf8')); // throws on a torn or mixed file
      reads++;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  for (const r of await Promise.all(codes)) assert.equal(r.code, 0, r.err);
  assert.ok(reads > 10, `${reads} reads while writing`);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['a.json', 'b.json', 'shared.json'], 'no temporary file left');
  for (const [f, w] of [
    ['a.json', 'a'],
    ['b.json', 'b'],
  ])
    assert.deepEqual(checkDocument(fs.readFileSync(path.join(dir, f), 'utf8')), {
      ...checkDocument(fs.readFileSync(path.join(dir, f), 'utf8')),
      version: 150,
      writer: w,
    });
  assert.equal(checkDocument(fs.readFileSync(path.join(dir, 'shared.json'), 'utf8')).version, 150);
});

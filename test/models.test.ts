/**
 * Keeping, using and shipping models (src/models): a save/load round trip predicts bit for bit; a loaded
 * model that learns a new task keeps its old tasks' predictions; an export of one task predicts what the
 * gated network does, has the parameters it reports and loads with tf.loadLayersModel; bad inputs get one
 * clear message. Small real data (split MNIST), a narrow HAT MLP.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs';
import { PNG } from 'pngjs';
import { exportTask, checkExport } from '../src/models/export';
import { MANIFEST_FILE } from '../src/models/format';
import { type LoadedModel, loadModel } from '../src/models/store';
import { predictStored } from '../src/models/predict';
import { encodeIdx } from '../src/data/idx';
import { buildExperiment } from '../src/data/experiments';
import { runExperiment } from '../src/runs/run';
import { APPROACH_IDS } from '../src/approaches/catalog';
import { backend } from './helpers';

const ROOT = path.resolve(__dirname, '..');
const hat = (args: string[]) =>
  spawnSync(path.join(ROOT, 'bin', 'hat'), args, { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-models-'));
const common = {
  experiment: 'mnist2' as const,
  approach: 'hat',
  seed: 3,
  hidden: [100, 100],
  maxTrain: 2000,
  maxTest: 400,
  train: { nepochs: 4 },
  resDir: dir,
  progress: 'quiet' as const,
  resume: false,
};
const exp = buildExperiment('mnist2', { seed: 3, maxTrain: 2000, maxTest: 400 });

/** The stored test images of task t (MNIST bytes), and their labels. */
function testImages(t: number): { images: Uint8Array; labels: Int32Array; names: string[] } {
  const { images, rows, labels } = exp.tasks[t].test;
  const out = new Uint8Array(rows.length * 784);
  rows.forEach((r, i) => out.set(images.subarray(r * 784, (r + 1) * 784), i * 784));
  return { images: out, labels, names: Array.from(rows, (_, i) => String(i)) };
}
const probabilities = (m: LoadedModel, t: number) => {
  const { images, names } = testImages(t);
  return predictStored(m, t, images, names).map((p) => p.probabilities);
};

describe('models', () => {
  const m1 = path.join(dir, 'after-task-1');
  const m2 = path.join(dir, 'after-task-2');
  before(async () => {
    await backend();
    // task 1 only, saved; then the saved model goes on with task 2, saved again
    (await runExperiment({ ...common, tasks: 1, saveModel: m1 })).approach.dispose();
    (await runExperiment({ ...common, tasks: 2, fromModel: m1, saveModel: m2 })).approach.dispose();
  });

  test('a save/load round trip predicts bit for bit', async () => {
    const { approach, experiment } = await runExperiment({
      ...common,
      approach: 'ewc',
      tasks: 2,
      saveModel: path.join(dir, 'ewc'),
    });
    const x = tf
      .tensor(testImages(0).images.slice(0, 50 * 784))
      .reshape([50, 784])
      .div(255);
    const before = approach.predict(x, 0).arraySync();
    const loaded = loadModel(path.join(dir, 'ewc'));
    assert.deepEqual(loaded.approach.predict(x, 0).arraySync(), before);
    assert.deepEqual(
      loaded.manifest.tasks.map((t) => t.classNames),
      [
        ['0', '1', '2', '3', '4'],
        ['5', '6', '7', '8', '9'],
      ],
    );
    assert.equal(loaded.manifest.tasks[1].name, experiment.tasks[1].name);
    approach.dispose();
    loaded.approach.dispose();
    x.dispose();
  });

  test('every approach saves and loads: both tasks predict bit for bit', async () => {
    const x = tf
      .tensor(testImages(1).images.slice(0, 20 * 784))
      .reshape([20, 784])
      .div(255);
    for (const id of APPROACH_IDS) {
      const out = path.join(dir, `all-${id}`);
      const { approach } = await runExperiment({
        ...common,
        approach: id,
        tasks: 2,
        hidden: [16, 16],
        maxTrain: 128,
        maxTest: 50,
        train: { nepochs: 1 },
        saveModel: out,
      });
      const loaded = loadModel(out);
      assert.equal(loaded.manifest.approach, id);
      for (const t of [0, 1])
        assert.deepEqual(
          loaded.approach.predict(x, t).arraySync(),
          approach.predict(x, t).arraySync(),
          `${id}, task ${t + 1}`,
        );
      approach.dispose();
      loaded.approach.dispose();
    }
    x.dispose();
  });

  test("a loaded model that learns a new task keeps its first task's predictions bit for bit", () => {
    const a = loadModel(m1);
    const b = loadModel(m2);
    assert.equal(a.manifest.learnt, 1);
    assert.equal(b.manifest.learnt, 2);
    assert.equal(b.manifest.tasks.length, 2, 'grown by a head');
    assert.deepEqual(probabilities(b, 0), probabilities(a, 0));
    const acc = b.manifest.accuracy!;
    assert.equal(acc[1][0], acc[0][0], "the run's matrix: task 1 kept");
    assert.ok(acc[1][1] > 0.8, `task 2 learnt: ${acc[1][1]}`);
    a.approach.dispose();
    b.approach.dispose();
  });

  test('an export predicts as the gated network (within 1e-5), has the parameters it reports, and loads with tf.loadLayersModel', async () => {
    const model = loadModel(m2);
    const { images, labels } = testImages(1);
    // a threshold below every closed gate keeps the exact function; 0.5 (the default) keeps far fewer units
    const exact = await exportTask(model, 1, path.join(dir, 'export-exact'), 1e-6);
    const check = await checkExport(model, 1, exact.files.modelJson, images, labels);
    assert.ok(check.maxDiff <= 1e-5, `largest probability difference ${check.maxDiff}`);
    assert.equal(check.exported, check.model);
    const pruned = await exportTask(model, 1, path.join(dir, 'export'));
    assert.ok(
      pruned.units.every((u) => u.kept < u.of),
      JSON.stringify(pruned.units),
    );
    assert.ok(pruned.parameters.exported < pruned.parameters.trunkAndHead / 2);
    const layers = await tfl.loadLayersModel(`file://${pruned.files.modelJson}`);
    assert.equal(layers.countParams(), pruned.parameters.exported);
    const pc = await checkExport(model, 1, pruned.files.modelJson, images, labels);
    assert.ok(Math.abs(pc.exported - pc.model) <= 0.02, `pruned export ${pc.exported} vs model ${pc.model}`);
    const meta = (
      JSON.parse(fs.readFileSync(pruned.files.modelJson, 'utf8')) as {
        userDefinedMetadata: { hatTs: { masks: { open: number[] }[]; task: { classNames: string[] } } };
      }
    ).userDefinedMetadata.hatTs;
    assert.deepEqual(
      meta.masks.map((m) => m.open.length),
      pruned.units.map((u) => u.kept),
    );
    assert.deepEqual(meta.task.classNames, ['5', '6', '7', '8', '9']);
    layers.dispose();
    model.approach.dispose();
  });

  test('hat predict on PNG and IDX inputs; hat capacity; clear errors for bad inputs', () => {
    // two test images of task 2: as PNG files (grey) and as one IDX batch
    const { images, labels } = testImages(1);
    const files: string[] = [];
    for (let i = 0; i < 2; i++) {
      const png = new PNG({ width: 28, height: 28 });
      for (let p = 0; p < 784; p++)
        png.data.set([images[i * 784 + p], images[i * 784 + p], images[i * 784 + p], 255], 4 * p);
      files.push(path.join(dir, `digit${i}.png`));
      fs.writeFileSync(files[i], PNG.sync.write(png));
    }
    const idx = path.join(dir, 'batch-idx3-ubyte');
    fs.writeFileSync(idx, encodeIdx({ shape: [2, 28, 28], data: images.subarray(0, 2 * 784) }));
    const r = hat(['predict', '--model', m2, '--task', '2', '--csv', ...files, idx]);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
    assert.equal(rows.length, 4);
    assert.deepEqual(
      rows.map((c) => c[1]),
      rows
        .slice(2)
        .concat(rows.slice(2))
        .map((c) => c[1]),
      'PNG and IDX give the same classes',
    );
    // the model is right on these two test digits of 5-9 (names are the digits)
    const expected = [String(5 + labels[0]), String(5 + labels[1])];
    assert.deepEqual(
      rows.slice(0, 2).map((c) => c[2]),
      expected,
    );

    const cap = hat(['capacity', '--model', m2]);
    assert.equal(cap.status, 0, cap.stderr);
    assert.match(cap.stdout, /^layer\s+units\s+1 MNIST 0-4\s+2 MNIST 5-9\s+all tasks\s+free\nfc1\s+100\s+[\d.]+%/);

    const bad = (args: string[], pattern: RegExp) => {
      const b = hat(args);
      assert.ok(b.status !== 0 && b.status !== null, `${args.join(' ')}: ${b.stderr}`);
      assert.match(b.stderr, pattern);
      assert.doesNotMatch(b.stderr, /    at /, 'no stack trace');
    };
    bad(
      ['predict', '--model', m2, '--task', '3', files[0]],
      /the model has no learnt task 3; its tasks: 1 \(MNIST 0-4\), 2 \(MNIST 5-9\)/,
    );
    bad(['predict', '--model', path.join(dir, 'nowhere'), '--task', '1', files[0]], /nowhere: no such model folder/);
    const text = path.join(dir, 'not-an-image.png');
    fs.writeFileSync(text, 'hello');
    bad(['predict', '--model', m2, '--task', '1', text], /not-an-image\.png: cannot be decoded as an image/);
    bad(
      ['export', '--model', m2, '--task', '1', '--out', path.join(dir, 'x'), '--threshold', '1.5'],
      /--threshold.*must be a gate value in \(0, 1\)/,
    );
    // a model folder of another version
    const other = path.join(dir, 'other-version');
    fs.cpSync(m2, other, { recursive: true });
    const manifest = JSON.parse(fs.readFileSync(path.join(other, MANIFEST_FILE), 'utf8')) as { format: string };
    manifest.format = 'hat-ts/model@0';
    fs.writeFileSync(path.join(other, MANIFEST_FILE), JSON.stringify(manifest));
    bad(
      ['capacity', '--model', other],
      /other-version was saved by another hat-ts version \(format hat-ts\/model@0; this version reads hat-ts\/model@2\)/,
    );
    // nothing half-written: an export that fails leaves no folder
    assert.ok(!fs.existsSync(path.join(dir, 'x')));
  });
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

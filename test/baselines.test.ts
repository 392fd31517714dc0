/**
 * The baselines' defining properties (spec §5), on small real data (permuted MNIST) and hand-computed cases:
 * PNN and PathNet never change an earlier task's outputs; EWC's penalty vanishes at the anchor and its Fisher
 * matches a hand-written backward pass; LwF distils the frozen model's softened outputs; IMM-mean averages,
 * IMM-mode merges by Fisher; LFL pulls the last hidden layer towards the old one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { Ewc } from '../src/approaches/ewc';
import { fisherDiagonal } from '../src/approaches/fisher';
import { APPROACHES, parseApproachParams } from '../src/approaches/index';
import { crossEntropy } from '../src/approaches/base';
import { type ImmMean } from '../src/approaches/imm-mean';
import { ImmMode, modeMerge } from '../src/approaches/imm-mode';
import { Lfl } from '../src/approaches/lfl';
import { type Lwf, distillationLoss, softened } from '../src/approaches/lwf';
import { PathNet, mutatePath, randomPath } from '../src/approaches/pathnet';
import { type Progressive } from '../src/approaches/progressive';
import { type Experiment, SampleSource, type Task, buildExperiment } from '../src/data/experiments';
import { Network } from '../src/nets/network';
import { type NetworkConfig, mlpConfig, networkConfigFor } from '../src/nets/config';
import { type Learner } from '../src/training/types';
import { Rng } from '../src/core/rng';
import { backend, learn as learnTask } from './helpers';

function experiment(maxTrain = 300): Experiment {
  return buildExperiment('pmnist', { seed: 3, tasks: 2, maxTrain, maxTest: 200 });
}

function create(id: string, config: NetworkConfig, params: string[] = []): Learner {
  return APPROACHES[id].create({ config, params: parseApproachParams(id, params), seed: 3 }) as Learner;
}

function smallConfig(id: string, exp: Experiment, hidden = [32, 32]): NetworkConfig {
  const network = APPROACHES[id].network;
  if (network === 'none') throw new Error(`${id} has no network`);
  return networkConfigFor(
    network,
    'mlp',
    exp.inputShape,
    exp.tasks.map((t) => t.classes),
    { hidden },
  );
}

function learn(a: Learner, t: number, tasks: Task[], nepochs = 2): void {
  learnTask(a, t, tasks, { nepochs });
}

/** The inputs of the first (up to) 512 test samples of a task (the caller disposes them). */
function firstBatch(task: Task, u: number): tf.Tensor {
  const source = SampleSource.of(task.test, u);
  let x: tf.Tensor | undefined;
  source.forEachBatch(512, (b, start) => {
    if (start === 0) x = tf.clone(b.x);
  });
  return x!;
}

const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** Learns task t for one epoch but skips its end-of-task step; returns copies of the weights reached. */
function learnWithoutEnd(a: Learner, t: number, tasks: Task[]): tf.Tensor[] {
  const ownEnd = a.endTask.bind(a);
  a.endTask = () => undefined;
  try {
    learnTask(a, t, tasks, { nepochs: 1 });
  } finally {
    a.endTask = ownEnd;
  }
  return a.model.variables().map((v) => tf.clone(v));
}

test("PNN and PathNet: the outputs of task 1 are bit-identical after learning task 2 (SGD's are not)", async () => {
  await backend();
  const exp = experiment();
  const x = firstBatch(exp.tasks[0], 0);
  const outputs: Record<string, (a: Learner) => tf.Tensor> = {
    progressive: (a) => (a as Progressive).model.logits(x, 0, false),
    pathnet: (a) => {
      const p = a as PathNet;
      return p.model.logits(p.model.features(x, p.bestPaths[0], false), 0);
    },
    sgd: (a) => {
      const n = a.model as Network;
      return n.logits(n.features(x, { training: false }).h, 0);
    },
  };
  for (const [id, out] of Object.entries(outputs)) {
    const a = create(id, smallConfig(id, exp), id === 'pathnet' ? ['generations=2', 'modules=6'] : []);
    learn(a, 0, exp.tasks);
    const before = tf.tidy(() => out(a));
    learn(a, 1, exp.tasks);
    const after = tf.tidy(() => out(a));
    if (id === 'sgd')
      assert.notDeepEqual(values(after), values(before), 'SGD changes task 1 outputs (the test can fail)');
    else assert.deepEqual(values(after), values(before), `${id}: task-1 logits changed`);
    if (id === 'pathnet') {
      const p = a as PathNet;
      assert.equal(p.bestPaths.length, 2);
      // a module kept by task 1 is frozen: task 2 may reuse it but cannot have changed it
    }
    tf.dispose([before, after]);
    a.dispose();
  }
  x.dispose();
});

test('PathNet paths: N distinct modules per layer; mutation moves entries by at most 2 modulo M', () => {
  const rng = new Rng('paths');
  for (let i = 0; i < 50; i++) {
    const path = randomPath(rng, 5, 16, 3);
    assert.equal(path.length, 5);
    for (const layer of path) {
      assert.equal(new Set(layer).size, 3);
      assert.ok(layer.every((m) => m >= 0 && m < 16));
    }
    const child = mutatePath(rng, path, 16);
    path.forEach((layer, l) =>
      layer.forEach((m, k) => {
        const d = (((child[l][k] - m) % 16) + 16) % 16;
        assert.ok([0, 1, 2, 14, 15].includes(d), `entry moved by ${d}`);
      }),
    );
  }
  // over many mutations each entry changes with probability about 1/(N·L) * 4/5 (a step of 0 is possible)
  let changed = 0;
  const n = 4000;
  const base = randomPath(rng, 5, 16, 3);
  for (let i = 0; i < n; i++)
    changed += mutatePath(rng, base, 16)
      .flat()
      .filter((m, j) => m !== base.flat()[j]).length;
  const rate = changed / (n * 15);
  assert.ok(Math.abs(rate - (1 / 15) * 0.8) < 0.01, `mutation rate ${rate}`);
});

/** Hand-written forward/backward of a 1-hidden-layer ReLU MLP with softmax CE (batch mean), for the Fisher check. */
function handGradients(
  W1: number[],
  b1: number[],
  W2: number[],
  b2: number[],
  x: number[][],
  y: number[],
  nIn: number,
  nH: number,
  nOut: number,
): number[][] {
  const zeros = (n: number) => new Array<number>(n).fill(0);
  const [gW1, gb1, gW2, gb2] = [zeros(nIn * nH), zeros(nH), zeros(nH * nOut), zeros(nOut)];
  const B = x.length;
  for (let i = 0; i < B; i++) {
    const pre = b1.map((b, j) => b + x[i].reduce((s, v, k) => s + v * W1[k * nH + j], 0));
    const h = pre.map((v) => Math.max(0, v));
    const z = b2.map((b, o) => b + h.reduce((s, v, j) => s + v * W2[j * nOut + o], 0));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const sum = e.reduce((a, b) => a + b, 0);
    const dz = e.map((v, o) => (v / sum - (o === y[i] ? 1 : 0)) / B);
    dz.forEach((d, o) => {
      gb2[o] += d;
      h.forEach((hv, j) => (gW2[j * nOut + o] += hv * d));
    });
    const dh = h.map((_, j) => (pre[j] > 0 ? dz.reduce((s, d, o) => s + d * W2[j * nOut + o], 0) : 0));
    dh.forEach((d, j) => {
      gb1[j] += d;
      x[i].forEach((v, k) => (gW1[k * nH + j] += v * d));
    });
  }
  return [gW1, gb1, gW2, gb2];
}

test('EWC: Fisher = Σ_batches 20·g²/N, checked against a hand-written backward pass; penalty 0 at the anchor, λ/2·F·δ² off it', async () => {
  await backend();
  const exp = experiment(50); // 50 samples: batches of 20, 20 and 10 (the last still weighted by 20)
  const config = mlpConfig({ heads: exp.tasks.map((t) => t.classes), hat: false, hidden: [5], dropout: 0 });
  const ewc = new Ewc(new Network(config, 3), { lambda: 5000 });
  ewc.beginTask(0, exp.tasks);
  ewc.endTask(0, exp.tasks);
  const F = ewc.fisher!;
  const net = ewc.net;
  const [W1, b1] = [net.layers[0].weight, net.layers[0].bias].map(values);
  const [W2, b2] = [net.heads[0].weight, net.heads[0].bias].map(values);
  const expected = [W1, b1, W2, b2].map((w) => new Array<number>(w.length).fill(0));
  const source = SampleSource.of(exp.tasks[0].train, 0);
  source.forEachBatch(20, (batch) => {
    const xs = batch.x.arraySync() as number[][];
    const ys = Array.from(batch.y.dataSync());
    handGradients(W1, b1, W2, b2, xs, ys, 784, 5, 10).forEach((g, i) =>
      g.forEach((v, j) => (expected[i][j] += (20 * v * v) / 50)),
    );
  });
  // anchored variables: trunk (W1, b1), then heads (head 0 W, b, head 1 W, b)
  [0, 1, 2, 3].forEach((i) => {
    const got = values(F[i]);
    const scale = Math.max(...expected[i].map(Math.abs));
    got.forEach((v, j) =>
      assert.ok(Math.abs(v - expected[i][j]) <= 1e-4 * scale + 1e-9, `fisher ${i}[${j}]: ${v} vs ${expected[i][j]}`),
    );
  });
  assert.ok(
    values(F[4]).every((v) => v === 0) && values(F[5]).every((v) => v === 0),
    "task 2's head is not reached by task 1's loss",
  );

  assert.equal(ewc.penalty().dataSync()[0], 0, 'penalty is zero at the anchor');
  // move one weight by δ: penalty = λ/2 · F · δ²
  const j = values(F[2]).findIndex((v) => v > 0);
  const delta = 0.01;
  const w = net.heads[0].weight;
  const moved = tf.tidy(() =>
    tf.add(w, tf.mul(tf.reshape(tf.oneHot(tf.tensor1d([j], 'int32'), w.size), w.shape), delta)),
  );
  w.assign(moved);
  moved.dispose();
  const p = ewc.penalty().dataSync()[0];
  const want = (5000 / 2) * values(F[2])[j] * delta * delta;
  assert.ok(Math.abs(p - want) <= 1e-3 * want, `penalty ${p} vs ${want}`);
  // the training step adds the penalty in closed form: value and gradient equal autodiff of penalty()
  const anchored = net.trunkVariables().concat(net.headVariables());
  const term = (
    ewc as unknown as { analyticTerm(v: tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } }
  ).analyticTerm(anchored);
  assert.ok(Math.abs(term.value.dataSync()[0] - p) <= 1e-6 * Math.max(1, p), 'closed-form value');
  const auto = tf.variableGrads(() => ewc.penalty(), anchored).grads;
  for (const v of anchored) {
    const diff = tf.max(tf.abs(tf.sub(term.grads[v.name], auto[v.name]))).dataSync()[0];
    assert.ok(diff <= 1e-6, `closed-form gradient of ${v.name}: ${diff}`);
  }
  assert.ok(tf.max(tf.abs(term.grads[w.name])).dataSync()[0] > 0, 'the moved weight is pulled back');
  ewc.dispose();
});

test('EWC: the Fisher of task 2 is averaged with the old one, F = (F_new + 1·F_old)/2', async () => {
  await backend();
  const exp = experiment(60);
  const config = mlpConfig({ heads: exp.tasks.map((t) => t.classes), hat: false, hidden: [8], dropout: 0 });
  const ewc = new Ewc(new Network(config, 3));
  learn(ewc, 0, exp.tasks, 1);
  const F0 = ewc.fisher!.map((f) => tf.clone(f));
  learn(ewc, 1, exp.tasks, 1);
  const F1 = ewc.taskFisher(1, exp.tasks); // same weights, no dropout: what endTask computed
  ewc.fisher!.forEach((f, i) => {
    const want = tf.tidy(() => tf.div(tf.add(F1[i], F0[i]), 2));
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(f, want))).dataSync()[0]);
    assert.ok(diff <= 1e-7 + 1e-5 * tf.tidy(() => tf.max(want).dataSync()[0]), `merged Fisher ${i} off by ${diff}`);
    want.dispose();
  });
  tf.dispose([...F0, ...F1]);
  ewc.dispose();
});

test("LwF: the distillation target is the frozen old model's softened softmax; D matches a hand computation", async () => {
  await backend();
  const exp = experiment();
  const lwf = create('lwf', smallConfig('lwf', exp), ['T=2']) as Lwf;
  learn(lwf, 0, exp.tasks, 1);
  const x = firstBatch(exp.tasks[1], 1);
  const net = lwf.net;
  const logits = tf.tidy(() => net.logits(net.features(x, { training: false }).h, 0));
  const handTarget = logits.arraySync().map((row) => {
    const m = Math.max(...row);
    const p = row.map((v) => Math.exp(v - m));
    const s = p.reduce((a, b) => a + b, 0);
    const q = p.map((v) => Math.pow(v / s, 1 / 2));
    const qs = q.reduce((a, b) => a + b, 0);
    return q.map((v) => v / qs);
  });
  const before = lwf.targets(x, 0);
  before.arraySync().forEach((row, i) => row.forEach((v, k) => assert.ok(Math.abs(v - handTarget[i][k]) < 1e-5)));
  let after: tf.Tensor | null = null;
  let moved = 0;
  // checked after task 2's epoch, before its endTask replaces the old model with the new one
  learnTask(lwf, 1, exp.tasks, { nepochs: 1 }, [
    {
      onEpochEnd: () => {
        after = lwf.targets(x, 0);
        moved = tf.tidy(
          () => tf.max(tf.abs(tf.sub(net.logits(net.features(x, { training: false }).h, 0), logits))).dataSync()[0],
        );
      },
    },
  ]);
  assert.deepEqual(values(after!), values(before), 'the old model is frozen while task 2 trains');
  assert.ok(moved > 0, "the new model's head 1 did change");

  // D on a hand case: T = 1, target (0.5, 0.5) from equal old logits, new logits (0, ln 3) -> p = (0.25, 0.75)
  const d = distillationLoss(tf.tensor2d([[0, Math.log(3)]]), tf.tensor2d([[1, 1]]), 1).dataSync()[0];
  const eps = 1e-5 / 2;
  const p = [0.25 + eps, 0.75 + eps].map((v) => v / (1 + 2 * eps));
  assert.ok(Math.abs(d - -(0.5 * Math.log(p[0]) + 0.5 * Math.log(p[1]))) < 1e-6);
  const s = softened(tf.tensor2d([[0, Math.log(4)]]), 0.5).dataSync(); // (0.2, 0.8)^0.5 renormalised = (1/3, 2/3)
  assert.ok(Math.abs(s[0] - 1 / 3) < 1e-6 && Math.abs(s[1] - 2 / 3) < 1e-6);
  tf.dispose([x, logits, before, after!]);
  lwf.dispose();
});

test('IMM-mean: merging two identical models gives that model; otherwise (θ + t·θ_prev)/(t+1)', async () => {
  await backend();
  const exp = experiment();
  const imm = create('imm-mean', smallConfig('imm-mean', exp), []) as ImmMean;
  imm.beginTask(0, exp.tasks);
  imm.endTask(0, exp.tasks);
  const theta = imm.net.variables().map(values);
  imm.beginTask(1, exp.tasks);
  imm.endTask(1, exp.tasks); // nothing learnt: θ = θ_prev
  assert.deepEqual(imm.net.variables().map(values), theta);

  const imm2 = create('imm-mean', smallConfig('imm-mean', exp), []) as ImmMean;
  learn(imm2, 0, exp.tasks, 1);
  const theta0 = imm2.net.variables().map(values);
  const theta1 = learnWithoutEnd(imm2, 1, exp.tasks).map(values);
  imm2.endTask(1, exp.tasks);
  imm2.net
    .variables()
    .map(values)
    .forEach((m, i) =>
      m.forEach((v, j) => {
        const want = Math.fround(Math.fround(theta1[i][j] + Math.fround(theta0[i][j] * 1)) / 2);
        assert.ok(Math.abs(v - want) <= 1e-7 * Math.max(1, Math.abs(want)), `variable ${i}[${j}]: ${v} vs ${want}`);
      }),
    );
  assert.notDeepEqual(theta1, theta0, 'task 2 moved the weights');
  imm.dispose();
  imm2.dispose();
});

test('IMM-mode: merge = (F_new·θ + F_acc·θ_prev)/(F_new + F_acc), 0/0 keeps θ; merge=false (reference) keeps θ', async () => {
  await backend();
  const got = values(
    modeMerge(
      tf.tensor1d([1, 2, 3, 4]),
      tf.tensor1d([3, 2, 1, 0]),
      tf.tensor1d([1, 0, 0, 3]),
      tf.tensor1d([1, 1, 0, 1]),
    ),
  );
  assert.deepEqual(got, [2, 2, 3, 3]);

  const exp = experiment(80);
  const config = mlpConfig({ heads: exp.tasks.map((t) => t.classes), hat: false, hidden: [8], dropout: 0 });
  for (const merge of [true, false]) {
    const imm = new ImmMode(new Network(config, 3), { merge });
    learn(imm, 0, exp.tasks, 1);
    const theta0 = imm.net.variables().map((v) => tf.clone(v));
    const F0 = merge ? imm.fisherAcc!.map((f) => tf.clone(f)) : [];
    const theta1 = learnWithoutEnd(imm, 1, exp.tasks); // θ1 before the end-of-task merge
    const vars = imm.net.variables();
    const F1 = fisherDiagonal(vars, SampleSource.of(exp.tasks[1].train, 1), (b) =>
      tf.tidy(() => {
        const logits = imm.net.logits(imm.net.features(b.x, { training: true }).h, 1);
        return tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(b.y, 10), tf.logSoftmax(logits)), 1))) as tf.Scalar;
      }),
    );
    imm.endTask(1, exp.tasks);
    vars.forEach((v, i) => {
      const want = merge ? modeMerge(theta1[i], theta0[i], F1[i], F0[i]) : tf.clone(theta1[i]);
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(v, want))).dataSync()[0]);
      assert.ok(diff < 1e-6, `merge=${merge}: variable ${i} off by ${diff}`);
      want.dispose();
    });
    if (merge)
      assert.ok(
        vars.some((v, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(v, theta1[i]))).dataSync()[0]) > 0),
        'the merge changed the weights',
      );
    tf.dispose([...theta0, ...theta1, ...F0, ...F1]);
    imm.dispose();
  }
});

test('LFL: ½·Σ(h_old − h)² summed over batch and units; zero right after a task; its trunk has no dropout on the last layer', async () => {
  await backend();
  const d = Lfl.featureDistance(
    tf.tensor2d([
      [1, 2],
      [0, 0],
    ]),
    tf.tensor2d([
      [0, 0],
      [3, 0],
    ]),
  ).dataSync()[0];
  assert.equal(d, 0.5 * (1 + 4 + 9));
  const exp = experiment();
  const config = smallConfig('lfl', exp);
  assert.equal(config.layers[config.layers.length - 1].dropout, 0);
  assert.equal(config.layers[0].dropout, 0.5);
  const lfl = create('lfl', config) as Lfl;
  learn(lfl, 0, exp.tasks, 1);
  const x = firstBatch(exp.tasks[1], 1);
  const h = tf.tidy(() => lfl.net.features(x, { training: false }).h);
  const hOld = tf.tidy(() => lfl.old.model!.features(x, { training: false }).h);
  assert.deepEqual(values(hOld), values(h));
  tf.dispose([x, h, hOld]);
  // its validation objective is the reference's whatever the evaluation batch: CE (batch mean) plus the summed
  // distance of batches of the training size (64), weighted by batch size, over the number of samples
  tf.dispose(learnWithoutEnd(lfl, 1, exp.tasks)); // task 2 learnt, the old model still task 1's
  const source = SampleSource.of(exp.tasks[1].valid, 1);
  let want = 0;
  source.forEachBatch(64, (b) => {
    const v = tf.tidy(() => {
      const hNew = lfl.net.features(b.x, { training: false }).h;
      const old = lfl.old.model!.features(b.x, { training: false }).h;
      return tf.add(crossEntropy(lfl.net.logits(hNew, 1), b.y), tf.mul(Lfl.featureDistance(hNew, old), 0.05));
    });
    want += v.dataSync()[0] * b.size;
    v.dispose();
  });
  want /= source.n;
  const got = lfl.validationLoss(source, 64);
  assert.ok(Math.abs(got - want) <= 1e-5 * want, `validation ${got} vs the reference's ${want}`);
  assert.ok(Math.abs(lfl.validationLoss(source) - want) > 1e-3 * want, 'in batches of 512 it would differ');
  lfl.dispose();
});

test("PathNet and PNN on the AlexNet trunk: the spec's parameter counts, and a training step lowers the loss", async () => {
  await backend();
  // mixture class counts with a 10-class task first (PNN's count depends on the first head: it has no lateral)
  const heads = [10, 100, 10, 100, 10, 10, 43, 10];
  const counts: Record<string, number> = {};
  for (const id of ['pathnet', 'progressive']) {
    const config = networkConfigFor('baseline', 'alexnet', [32, 32, 3], heads);
    const a = create(id, config);
    counts[id] = a.model.parameterCount();
    // one task-2 step on a fixed random batch, repeated: the loss goes down (gradients reach the trainable part)
    const rng = new Rng('alexnet-batch');
    const x = tf.tensor4d(rng.normalArray(16 * 32 * 32 * 3), [16, 32, 32, 3]);
    const y = tf.tensor1d(
      Array.from({ length: 16 }, (_, i) => i % 10),
      'int32',
    );
    const batch = { x, y, tasks: new Int32Array(16).fill(1), task: 1, size: 16 };
    const tasks = heads.map((classes, index) => ({ index, name: `t${index}`, classes }) as unknown as Task);
    // as if task 1 had been learnt (PathNet: some best path) and task 2 had begun
    if (a instanceof PathNet) a.bestPaths.push(randomPath(new Rng('p0'), 5, 16, 3));
    a.beginTask(1, tasks);
    if (a instanceof PathNet) a.candidate = randomPath(new Rng('p1'), 5, 16, 3);
    const losses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const l = a.trainBatch(batch, { epoch: 1, batch: 0, batches: 1, start: 0, samples: 16, lr: 0.01 });
      losses.push(l.dataSync()[0]);
      l.dispose();
    }
    assert.ok(losses[3] < losses[0], `${id}: loss ${losses.join(' -> ')}`);
    tf.dispose([x, y]);
    a.dispose();
  }
  assert.equal((counts.pathnet / 1e6).toFixed(2), '7.09');
  assert.equal((counts.progressive / 1e6).toFixed(2), '7.16');
});

test('every baseline: flat tensor count across epochs, and an interrupted run resumes to the same result', async () => {
  await backend();
  const { runExperiment } = await import('../src/runs/run');
  const { createProgress } = await import('../src/training/progress');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const options = (approach: string, resDir: string) => ({
    experiment: 'mnist2' as const,
    approach,
    seed: 2,
    hidden: [48, 48],
    maxTrain: 400,
    maxTest: 300,
    train: { nepochs: 2 },
    parameters: approach === 'pathnet' ? ['generations=2', 'modules=6'] : [],
    resDir,
    progress: createProgress('quiet'),
    resume: true,
  });
  for (const id of ['lwf', 'lfl', 'ewc', 'imm-mean', 'imm-mode', 'pathnet', 'progressive']) {
    const counts: number[][] = [];
    const whole = await runExperiment({
      ...options(id, fs.mkdtempSync(path.join(os.tmpdir(), 'hat-base-'))),
      callbacks: [{ onEpochEnd: (e) => void (counts[e.t] ??= []).push(tf.memory().numTensors) }],
    });
    whole.approach.dispose();
    for (const perTask of counts)
      assert.ok(
        perTask.every((c) => c === perTask[0]),
        `${id}: tensors per epoch ${JSON.stringify(counts)}`,
      );
    assert.equal(whole.result.status, 'complete');
    // chance is 0.2. LFL's summed feature distance (lambda 0.05, clip 200) swamps task 2's loss at this size, so
    // it does not learn task 2 beyond chance on most seeds (before and after device dropout: 0.20-0.32 over
    // seeds 0-3; the paper's LFL collapses too, rho -0.92): only its first task is required here
    assert.ok(
      whole.result.accuracy[0][0] > 0.5 && (id === 'lfl' || whole.result.accuracy[1][1] > 0.3),
      `${id} learnt: ${JSON.stringify(whole.result.accuracy)}`,
    );

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-base-'));
    const interrupt = {
      onEpochEnd: (e: { t: number }) => {
        if (e.t === 1) throw new Error('simulated interruption');
      },
    };
    await assert.rejects(runExperiment({ ...options(id, dir), callbacks: [interrupt] }), /simulated interruption/);
    const resumed = await runExperiment(options(id, dir));
    resumed.approach.dispose();
    assert.deepEqual(resumed.result.accuracy, whole.result.accuracy, `${id}: resumed run differs`);
  }
});

test("baseline hyperparameters: the spec's defaults, typed parsing of -p name=value, clear errors", () => {
  const parse = parseApproachParams;
  assert.deepEqual(parse('lwf', []), { lambda: 2, T: 1, clipNorm: 100 });
  assert.deepEqual(parse('lfl', []), { lambda: 0.05, clipNorm: 200 });
  assert.deepEqual(parse('ewc', ['lambda=1e3']), { lambda: 1000, clipNorm: 100 });
  assert.deepEqual(parse('imm-mean', []), { r: 1e-4, clipNorm: 10000 });
  assert.deepEqual(parse('imm-mode', ['merge=false']), { lambda: 0.01, merge: false, clipNorm: 1000 });
  assert.deepEqual(parse('pathnet', ['generations=5']), {
    generations: 5,
    paths: 2,
    modules: 16,
    active: 3,
    widthFactor: 0.258,
    clipNorm: 1000,
  });
  assert.deepEqual(parse('progressive', []), {
    widthFactor: 1.117,
    fullRecursion: false,
    headLateral: true,
    clipNorm: 10000,
  });
  assert.throws(
    () => parse('imm-mode', ['merge=maybe']),
    /parameter merge of approach imm-mode \(-p merge=\.\.\.\) must be true or false, got 'maybe'/,
  );
  assert.throws(
    () => parse('ewc', ['lamda=3']),
    /approach ewc has no parameter 'lamda'; its parameters: lambda, clipNorm/,
  );
  assert.throws(() => parse('lwf', ['T=']), /parameter T of approach lwf \(-p T=\.\.\.\) must be a number > 0, got ''/);
  assert.throws(() => parse('lwf', ['T=0']), /must be a number > 0, got '0'/);
  assert.throws(
    () => parse('pathnet', ['paths=1.5']),
    /paths of approach pathnet .* must be an integer >= 1, got '1.5'/,
  );
  assert.throws(() => parse('hat', ['schedule=fast']), /schedule of approach hat .* must be code or paper, got 'fast'/);
  for (const id of Object.keys(APPROACHES)) {
    for (const [k, p] of Object.entries(APPROACHES[id].params))
      if (p.type === 'number' && p.grid) assert.ok(p.grid.includes(p.default), `${id}.${k}: default in its grid`);
  }
});

test("PathNet: a path's learning-rate decay takes effect at its next turn, as the reference builds its optimiser once per generation", async () => {
  await backend();
  const { runExperiment } = await import('../src/runs/run');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  // lr so small that the validation loss stops improving at once: with patience 1, lr / 3 after each later epoch
  const { result, approach } = await runExperiment({
    experiment: 'mnist2',
    approach: 'pathnet',
    seed: 1,
    tasks: 1,
    hidden: [16],
    maxTrain: 130,
    maxTest: 50,
    train: { nepochs: 6, lr: 1e-9, lrMin: 1e-14, patience: 1 },
    parameters: ['generations=2', 'modules=6'],
    resDir: fs.mkdtempSync(path.join(os.tmpdir(), 'hat-pathnet-')),
    progress: 'quiet',
    resume: false,
  });
  approach.dispose();
  const epochs = result.epochs[0].epochs;
  // 2 generations x 2 paths x 3 epochs
  assert.deepEqual(
    epochs.map((e) => [e.generation, e.path]),
    [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 1],
      [0, 1],
      [0, 1],
      [1, 0],
      [1, 0],
      [1, 0],
      [1, 1],
      [1, 1],
      [1, 1],
    ],
  );
  for (const [g, p] of [
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1],
  ]) {
    const lrs = new Set(epochs.filter((e) => e.generation === g && e.path === p).map((e) => e.lr));
    assert.equal(lrs.size, 1, `generation ${g}, path ${p}: one lr within the turn`);
  }
  assert.ok(epochs[6].lr < epochs[0].lr, 'the decays of generation 1 apply in generation 2');
});

/**
 * One task of a HAT model as a plain TensorFlow.js layers model (no gates, no other task): only the units
 * whose gate for the task is open (above a threshold) are kept, and the gates of the kept units are folded
 * into the weights that read them (a gate multiplies a unit's output after ReLU and pooling, both of which
 * commute with a non-negative scale). The result loads with `tf.loadLayersModel` in Node and in a browser;
 * its `userDefinedMetadata.hatTs` says how to preprocess an image and what the classes are.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { OptionError } from '../core/errors';
import { Hat } from '../approaches/hat/hat';
import { inputsPerUnitBelow, taps } from '../nets/geometry';
import { NetworkLearner } from '../approaches/base';
import type { ModelTask } from './format';
import { predictStored } from './predict';
import type { LoadedModel } from './store';

export interface ExportReport {
  task: string;
  threshold: number;
  /** Per gated layer: units kept of all. */
  units: { layer: string; kept: number; of: number }[];
  /** Weights and biases of the export, of the whole network (every head), and of its trunk plus this task's head. */
  parameters: { exported: number; network: number; trunkAndHead: number };
  files: { modelJson: string; weightsBin: string; bytes: number };
}

/** What the export's metadata carries for its users (the web page, `hat predict` on an export). */
export interface ExportMetadata {
  format: 'hat-ts/export@1';
  source: string;
  task: ModelTask;
  threshold: number;
  units: ExportReport['units'];
  /** Each gated layer's open units (indices in the full network), for drawing the task's masks. */
  masks: { layer: string; units: number; open: number[] }[];
}

export const EXPORT_FORMAT = 'hat-ts/export@1';

const values = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;

/** The export of task `task` (0-based) of a loaded model, written to `outDir` (model.json + weights.bin). */
export async function exportTask(
  model: LoadedModel,
  task: number,
  outDir: string,
  threshold = 0.5,
): Promise<ExportReport> {
  if (!(threshold > 0 && threshold < 1)) throw new OptionError(`--threshold must be in (0, 1), got ${threshold}`);
  const { approach, manifest } = model;
  if (!(task >= 0 && task < manifest.learnt)) throw new OptionError(`the model has no learnt task ${task + 1}`);
  if (!(approach instanceof NetworkLearner))
    throw new OptionError(`only models of a single network can be exported (${approach.id} is not one)`);
  const net = approach.net;
  const specs = net.config.layers;
  // the gates the model evaluates with (s = smax, or step gates for the compression variant), or all open
  const gates = net.layers.map((layer) =>
    approach instanceof Hat
      ? Array.from(values(layer.gate(task, approach.evalS)))
      : new Array<number>(layer.units).fill(1),
  );
  const keep = gates.map((g) => g.flatMap((v, i) => (v > threshold ? [i] : [])));
  if (keep.some((k) => k.length === 0))
    throw new OptionError(`no unit of some layer is open for task ${task + 1} at threshold ${threshold}`);

  const seq = tfl.sequential();
  const weights: tf.Tensor[][] = [];
  specs.forEach((spec, l) => {
    const W = values(net.layers[l].weight);
    const b = values(net.layers[l].bias);
    const out = keep[l];
    // input rows of the export: all raw inputs for the first layer, else the kept units below (gate folded in)
    const per = l === 0 ? 1 : inputsPerUnitBelow(specs, l);
    const below = l === 0 ? null : { units: specs[l - 1].units, kept: keep[l - 1], gate: gates[l - 1] };
    const inRows: { row: number; scale: number }[] = [];
    if (!below) for (let j = 0; j < spec.inputs; j++) inRows.push({ row: j, scale: 1 });
    else
      for (let p = 0; p < per; p++)
        for (const c of below.kept) inRows.push({ row: p * below.units + c, scale: below.gate[c] });
    const k2 = taps(spec);
    const kernel = new Float32Array(k2 * inRows.length * out.length);
    // [kh, kw, in, out] (conv) or [in, out] (dense): rows = taps x inputs, columns = outputs
    for (let t = 0; t < k2; t++) {
      inRows.forEach(({ row, scale }, i) => {
        const src = (t * spec.inputs + row) * spec.units;
        const dst = (t * inRows.length + i) * out.length;
        out.forEach((o, j) => (kernel[dst + j] = W[src + o] * scale));
      });
    }
    const bias = Float32Array.from(out, (o) => b[o]);
    if (spec.kind === 'conv') {
      const k = spec.kernel ?? 1;
      if (l === 0) seq.add(tfl.layers.inputLayer({ inputShape: manifest.build.inputShape }));
      seq.add(
        tfl.layers.conv2d({
          filters: out.length,
          kernelSize: k,
          strides: 1,
          padding: 'valid',
          activation: 'relu',
          name: spec.name,
        }),
      );
      weights.push([tf.tensor4d(kernel, [k, k, inRows.length, out.length]), tf.tensor1d(bias)]);
      if (spec.pool)
        seq.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'valid', name: `${spec.name}_pool` }));
    } else {
      if (l === 0) seq.add(tfl.layers.inputLayer({ inputShape: manifest.build.inputShape }));
      if (l > 0 && specs[l - 1].kind === 'conv') seq.add(tfl.layers.flatten({ name: `${spec.name}_flatten` }));
      seq.add(tfl.layers.dense({ units: out.length, activation: 'relu', name: spec.name }));
      weights.push([tf.tensor2d(kernel, [inRows.length, out.length]), tf.tensor1d(bias)]);
    }
  });
  // the task's head reads the last layer's kept units, its gate folded in
  const last = specs.length - 1;
  const head = net.heads[task];
  const HW = values(head.weight);
  const classes = head.bias.shape[0];
  const headKernel = new Float32Array(keep[last].length * classes);
  keep[last].forEach((u, i) => {
    for (let c = 0; c < classes; c++) headKernel[i * classes + c] = HW[u * classes + c] * gates[last][u];
  });
  seq.add(tfl.layers.dense({ units: classes, activation: 'softmax', name: 'head' }));
  weights.push([tf.tensor2d(headKernel, [keep[last].length, classes]), tf.tensor1d(values(head.bias))]);
  const layersWithWeights = seq.layers.filter((l) => l.getWeights().length > 0);
  layersWithWeights.forEach((layer, i) => layer.setWeights(weights[i]));
  tf.dispose(weights.flat());

  const units = specs.map((s, l) => ({ layer: s.name, kept: keep[l].length, of: s.units }));
  const metadata: ExportMetadata = {
    format: EXPORT_FORMAT,
    source: path.resolve(model.dir),
    task: manifest.tasks[task],
    threshold,
    units,
    masks: specs.map((s, l) => ({ layer: s.name, units: s.units, open: keep[l] })),
  };
  const files = await writeLayersModel(seq, outDir, metadata);
  const exported = seq.countParams();
  seq.dispose();
  const trunk = net.trunkVariables().reduce((n, v) => n + v.size, 0);
  return {
    task: manifest.tasks[task].name,
    threshold,
    units,
    parameters: { exported, network: net.parameterCount(), trunkAndHead: trunk + head.weight.size + head.bias.size },
    files,
  };
}

export interface ExportCheck {
  samples: number;
  /** Test accuracy of the export and of the model it came from, and the largest difference of their probabilities. */
  exported: number;
  model: number;
  maxDiff: number;
}

/** The export against the model on stored-format test images of its task (labels given). */
export async function checkExport(
  model: LoadedModel,
  task: number,
  modelJson: string,
  images: Uint8Array,
  labels: ArrayLike<number>,
): Promise<ExportCheck> {
  const n = labels.length;
  const pre = model.preprocess[task];
  const names = Array.from({ length: n }, (_, i) => String(i));
  const fromModel = predictStored(model, task, images, names);
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as ModelJsonFile;
  const [weightSpecs, weightData] = readWeights(modelJson);
  const layers = await tfl.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }),
  );
  let hits = 0;
  let maxDiff = 0;
  for (let start = 0; start < n; start += 512) {
    const m = Math.min(512, n - start);
    const x = new Float32Array(m * pre.size);
    for (let i = 0; i < m; i++) pre.write(images, start + i, x, i * pre.size);
    const probs = tf.tidy(
      () => (layers.predict(tf.tensor(x, [m, ...pre.outShape])) as tf.Tensor).arraySync() as number[][],
    );
    probs.forEach((p, i) => {
      const k = p.indexOf(Math.max(...p));
      if (k === labels[start + i]) hits++;
      p.forEach((v, c) => (maxDiff = Math.max(maxDiff, Math.abs(v - fromModel[start + i].probabilities[c]))));
    });
  }
  layers.dispose();
  return {
    samples: n,
    exported: hits / n,
    model: fromModel.filter((p, i) => p.class === labels[i]).length / n,
    maxDiff,
  };
}

interface ModelJsonFile {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** The weights of an export, read from the files its model.json names. */
function readWeights(modelJson: string): [tf.io.WeightsManifestEntry[], ArrayBuffer] {
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as ModelJsonFile;
  const group = json.weightsManifest[0];
  const buf = fs.readFileSync(path.join(path.dirname(modelJson), group.paths[0]));
  return [group.weights, buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)];
}

/** model.json (topology, weights manifest, metadata) and weights.bin, written beside the folder and renamed into place. */
async function writeLayersModel(
  model: tfl.Sequential,
  outDir: string,
  metadata: ExportMetadata,
): Promise<ExportReport['files']> {
  const dir = path.resolve(outDir);
  const tmp = `${dir}.${process.pid}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  let bytes = 0;
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      const data = artifacts.weightData as ArrayBuffer;
      bytes = data.byteLength;
      fs.writeFileSync(path.join(tmp, 'weights.bin'), new Uint8Array(data));
      const json = {
        format: 'layers-model',
        generatedBy: `hat-ts (TensorFlow.js ${tf.version_core})`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        userDefinedMetadata: { hatTs: metadata },
      };
      fs.writeFileSync(path.join(tmp, 'model.json'), JSON.stringify(json));
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
    }),
  );
  const old = `${dir}.${process.pid}.old`;
  if (fs.existsSync(dir)) fs.renameSync(dir, old);
  fs.renameSync(tmp, dir);
  fs.rmSync(old, { recursive: true, force: true });
  return {
    modelJson: path.join(dir, 'model.json'),
    weightsBin: path.join(dir, 'weights.bin'),
    bytes: bytes + fs.statSync(path.join(dir, 'model.json')).size,
  };
}

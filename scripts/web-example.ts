/**
 * The web page's example models: HAT on split MNIST (task 1 digits 0-4, task 2 digits 5-9; MLP 200-200, 6,000
 * training images per task, 20 epochs; about a minute on one core), saved to res/web-example/model, each task
 * exported (`hat export`: the open units only, gates folded in) to web/public/models/mnist2-taskN/ and checked
 * against the model on the task's whole MNIST test set; web/public/models/index.json lists them with their
 * accuracy, and samples.json holds one MNIST test image per digit. `npm run web:example` (or
 * `tsx scripts/web-example.ts [OUT_DIR]`) writes them again; the committed files are what it wrote.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadImageSet } from '../src/data/datasets';
import { checkExport, exportTask } from '../src/models/export';
import { loadModel } from '../src/models/store';
import { runExperiment } from '../src/runs/run';
import { INDEX_FORMAT, type WebModelEntry, type WebModelIndex, type WebSamples } from '../web/src/model-index';

const ROOT = path.resolve(__dirname, '..');
/** Where the page finds its models (served as /models/). */
export const WEB_MODELS_DIR = path.join(ROOT, 'web', 'public', 'models');

/** The example's run: about a minute on one core, above 95% test accuracy on each task, exports of about 450 KB. */
export const EXAMPLE = {
  experiment: 'mnist2' as const,
  approach: 'hat',
  seed: 0,
  hidden: [200, 200],
  maxTrain: 6000,
  nepochs: 20,
  parameters: {} as Record<string, number>,
};

export async function makeWebExample(
  out = WEB_MODELS_DIR,
  modelDir = path.join(ROOT, 'res', 'web-example'),
): Promise<WebModelIndex> {
  const started = Date.now();
  const { experiment, approach, result, backend } = await runExperiment({
    experiment: EXAMPLE.experiment,
    approach: EXAMPLE.approach,
    seed: EXAMPLE.seed,
    hidden: EXAMPLE.hidden,
    maxTrain: EXAMPLE.maxTrain,
    parameters: EXAMPLE.parameters,
    train: { nepochs: EXAMPLE.nepochs },
    resDir: path.join(modelDir, 'runs'),
    resume: false,
    checkpointEvery: 0,
    progress: 'quiet',
    saveModel: path.join(modelDir, 'model'),
  });
  approach.dispose();
  const trained = (Date.now() - started) / 1000;
  const model = loadModel(path.join(modelDir, 'model'));
  fs.mkdirSync(out, { recursive: true });
  const models: WebModelEntry[] = [];
  try {
    for (const [t, task] of experiment.tasks.entries()) {
      const name = `${EXAMPLE.experiment}-task${t + 1}`;
      const report = await exportTask(model, t, path.join(out, name));
      // the metadata names the model folder it came from: relative to the project, not this machine's path
      const json = JSON.parse(fs.readFileSync(report.files.modelJson, 'utf8')) as {
        userDefinedMetadata: { hatTs: { source: string } };
      };
      json.userDefinedMetadata.hatTs.source = path.relative(ROOT, path.join(modelDir, 'model'));
      fs.writeFileSync(report.files.modelJson, JSON.stringify(json));
      // the check of `hat export`: the export against the model on the task's whole test set
      const { images, rows, labels } = task.test;
      const size = task.test.preprocess.inSize;
      const stored = new Uint8Array(rows.length * size);
      rows.forEach((r, i) => stored.set(images.subarray(r * size, (r + 1) * size), i * size));
      const check = await checkExport(model, t, report.files.modelJson, stored, labels);
      models.push({
        name,
        path: `${name}/model.json`,
        task: task.name,
        classNames: task.classNames,
        units: report.units,
        parameters: { exported: report.parameters.exported, trunkAndHead: report.parameters.trunkAndHead },
        bytes: fs.statSync(report.files.modelJson).size + fs.statSync(report.files.weightsBin).size,
        accuracy: check,
      });
    }
  } finally {
    model.approach.dispose();
  }
  const index: WebModelIndex = {
    format: INDEX_FORMAT,
    created: new Date().toISOString(),
    command: 'npm run web:example',
    source: {
      experiment: EXAMPLE.experiment,
      approach: EXAMPLE.approach,
      parameters: result.config.parameters,
      seed: EXAMPLE.seed,
      hidden: EXAMPLE.hidden,
      maxTrain: EXAMPLE.maxTrain,
      nepochs: EXAMPLE.nepochs,
      backend: backend.name,
      accuracy: result.accuracy,
    },
    models,
  };
  fs.writeFileSync(path.join(out, 'index.json'), `${JSON.stringify(index, null, 1)}\n`);
  fs.writeFileSync(path.join(out, 'samples.json'), `${JSON.stringify(mnistSamples())}\n`);
  console.log(
    `trained in ${trained.toFixed(0)} s on ${backend.name}; accuracy after task 2: ${result.accuracy[1].map((a) => (100 * a).toFixed(1)).join(', ')}%`,
  );
  for (const m of models)
    console.log(
      `${m.name} (${m.task}): units ${m.units.map((u) => `${u.layer} ${u.kept}/${u.of}`).join(', ')}; ` +
        `${(m.bytes / 1024).toFixed(0)} KB; test accuracy on ${m.accuracy.samples}: export ${(100 * m.accuracy.exported).toFixed(2)}%, model ${(100 * m.accuracy.model).toFixed(2)}%`,
    );
  return index;
}

/** The first MNIST test image of each digit. */
export function mnistSamples(): WebSamples {
  const set = loadImageSet('mnist', 'test', []);
  const size = set.shape[0] * set.shape[1] * set.shape[2];
  const samples = Array.from({ length: 10 }, (_, label) => {
    const index = set.labels.findIndex((l) => l === label);
    const pixels = Buffer.from(set.images.subarray(index * size, (index + 1) * size)).toString('base64');
    return { label, index, pixels };
  });
  return { source: 'MNIST test set (the first image of each digit)', shape: set.shape, samples };
}

if (require.main === module) {
  makeWebExample(process.argv[2] ? path.resolve(process.argv[2]) : undefined).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}

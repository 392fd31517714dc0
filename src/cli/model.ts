/** `hat predict`, `hat export` and `hat capacity`: using, shipping and inspecting a saved model (src/models). */
import * as path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { unitUsage } from '../analysis/usage';
import { initBackend } from '../backend/index';
import { type ExperimentName, buildExperiment } from '../data/experiments';
import { type ExportCheck, checkExport, exportTask } from '../models/export';
import { ModelFileError, readManifest, taskIndex } from '../models/format';
import { predictStored, readInputs } from '../models/predict';
import { type LoadedModel, loadModel } from '../models/store';
import { backendOption, dataDirOption } from './options';

function threshold(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError('must be a gate value in (0, 1), e.g. 0.5');
  return n;
}

const csvCell = (s: string | number) =>
  typeof s === 'number' ? String(s) : /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;

export function modelCommands(program: Command): void {
  program
    .command('predict')
    .description(
      "classify images with a saved model: the class and its probability per input (PNG, JPEG, PPM/PGM files, or IDX batches, resized and normalised as the task's dataset)",
    )
    .requiredOption('--model <dir>', 'model folder (hat run --save-model DIR)')
    .requiredOption('--task <n|name>', 'the task whose head to use: its number (1 = the first learnt) or its name')
    .argument('<files...>', 'images or IDX files')
    .option('--csv', 'CSV output (input, class, name, probability)')
    .option('--invert', 'invert the grey levels first (dark drawings on a light background, for MNIST-like tasks)')
    .addOption(backendOption())
    .action(
      async (
        files: string[],
        o: { model: string; task: string; csv?: boolean; invert?: boolean; backend?: string },
      ) => {
        await initBackend(o.backend);
        const manifest = readManifest(o.model);
        const t = taskIndex(manifest, o.task);
        const model = loadModel(o.model);
        try {
          const { names, images } = readInputs(files, model.preprocess[t].spec.inShape, o.invert);
          const preds = predictStored(model, t, images, names);
          if (o.csv) {
            console.log('input,class,name,probability');
            for (const p of preds)
              console.log([p.input, p.class, p.name, p.probability.toFixed(6)].map(csvCell).join(','));
          } else {
            const w = Math.max(5, ...preds.map((p) => p.input.length));
            console.log(`task ${t + 1}: ${manifest.tasks[t].name}`);
            for (const p of preds)
              console.log(
                `${p.input.padEnd(w)}  ${p.name.padEnd(12)} ${(100 * p.probability).toFixed(1).padStart(5)}%  (class ${p.class})`,
              );
          }
        } finally {
          model.approach.dispose();
        }
      },
    );

  program
    .command('export')
    .description(
      'one task of a HAT model as a plain TensorFlow.js layers model: only the units open for the task, the gates folded into the weights (tf.loadLayersModel loads it in Node and in a browser)',
    )
    .requiredOption('--model <dir>', 'model folder (hat run --save-model DIR)')
    .requiredOption('--task <n|name>', 'the task to export: its number (1 = the first) or its name')
    .requiredOption('--out <dir>', 'where to write model.json and weights.bin')
    .addOption(
      new Option('--threshold <gate>', 'units whose gate is above this are kept').argParser(threshold).default(0.5),
    )
    .option(
      '--no-check',
      "skip comparing the export's accuracy with the model's on the task's test set (needs the data)",
    )
    .addOption(dataDirOption())
    .addOption(backendOption())
    .action(
      async (o: {
        model: string;
        task: string;
        out: string;
        threshold: number;
        check: boolean;
        dataDir?: string;
        backend?: string;
      }) => {
        await initBackend(o.backend);
        const manifest = readManifest(o.model);
        const t = taskIndex(manifest, o.task);
        const model = loadModel(o.model);
        try {
          const report = await exportTask(model, t, o.out, o.threshold);
          const p = report.parameters;
          console.log(
            `task ${t + 1} (${report.task}) exported to ${path.relative('.', report.files.modelJson) || report.files.modelJson}`,
          );
          console.log(
            `units kept (gate > ${o.threshold}): ${report.units.map((u) => `${u.layer} ${u.kept}/${u.of}`).join(', ')}`,
          );
          console.log(
            `parameters: ${p.exported.toLocaleString('en')} of ${p.trunkAndHead.toLocaleString('en')} (trunk and this head; ${((100 * p.exported) / p.trunkAndHead).toFixed(1)}%), ${p.network.toLocaleString('en')} in the whole network`,
          );
          console.log(`files: ${(report.files.bytes / 1024).toFixed(0)} KB`);
          if (o.check) {
            const acc = await exportAccuracy(model, t, report.files.modelJson, o.dataDir);
            if (acc)
              console.log(
                `test accuracy on ${acc.samples} samples: export ${(100 * acc.exported).toFixed(2)}%, model ${(100 * acc.model).toFixed(2)}%; largest probability difference ${acc.maxDiff.toExponential(1)}`,
              );
            else console.log('(no test data found for the check: give --data-dir, or --no-check)');
          }
        } finally {
          model.approach.dispose();
        }
      },
    );

  program
    .command('capacity')
    .description(
      'the units of each layer every learnt task uses (gate above the threshold), all tasks together, and what is still free for new tasks (HAT models)',
    )
    .requiredOption('--model <dir>', 'model folder (hat run --save-model DIR)')
    .addOption(
      new Option('--threshold <gate>', 'a unit is used when its gate is above this').argParser(threshold).default(0.5),
    )
    .option('--json', 'JSON output')
    .action((o: { model: string; threshold: number; json?: boolean }) => {
      const manifest = readManifest(o.model);
      const gates = (manifest.state as { taskGates?: number[][][] } | null)?.taskGates;
      if (!gates)
        throw new ModelFileError(`${o.model} is a ${manifest.approach} model: only HAT models have task gates`);
      const specs = manifest.network?.layers ?? gates[0].map((g, l) => ({ name: `layer ${l + 1}`, units: g.length }));
      const rows = unitUsage(specs, gates, o.threshold);
      if (o.json)
        return console.log(
          JSON.stringify(
            { tasks: manifest.tasks.slice(0, gates.length).map((t) => t.name), threshold: o.threshold, layers: rows },
            null,
            1,
          ),
        );
      const tasks = manifest.tasks.slice(0, gates.length).map((t, i) => `${i + 1} ${t.name}`);
      const header = ['layer', 'units', ...tasks, 'all tasks', 'free'];
      const cells = rows.map((r) => [
        r.layer,
        String(r.units),
        ...r.perTask.map((f) => `${(100 * f).toFixed(1)}%`),
        `${(100 * r.used).toFixed(1)}%`,
        `${(100 * r.free).toFixed(1)}%`,
      ]);
      const w = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
      const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ');
      console.log([line(header), ...cells.map(line)].join('\n'));
    });
}

/** The export's and the model's accuracy on the task's test set (rebuilt from the model's run), when its data is found. */
async function exportAccuracy(
  model: LoadedModel,
  t: number,
  modelJson: string,
  dataDir?: string,
): Promise<ExportCheck | undefined> {
  const p = model.manifest.config?.protocol;
  if (!p) return undefined;
  let exp;
  try {
    exp = buildExperiment(p.experiment as ExperimentName, {
      seed: p.seed,
      tasks: p.tasks,
      datasets: p.datasets,
      maxTrain: p.maxTrain,
      maxTest: p.maxTest,
      validation: p.validation === 'train' ? undefined : p.validation,
      dataDir,
    });
  } catch {
    return undefined;
  }
  const task = exp.tasks[t];
  if (!task || task.name !== model.manifest.tasks[t].name) return undefined;
  const { images, rows, labels } = task.test;
  const size = task.test.preprocess.inSize;
  const stored = new Uint8Array(rows.length * size);
  rows.forEach((r, i) => stored.set(images.subarray(r * size, (r + 1) * size), i * size));
  return checkExport(model, t, modelJson, stored, labels);
}

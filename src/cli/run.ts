/** `hat run` (one experiment, approach and seed) and `hat quick` (the quick reproduction of `npm start`). */
import * as os from 'node:os';
import * as path from 'node:path';
import { type Command, Option } from 'commander';
import { APPROACHES, approachDef } from '../approaches/index';
import { APPROACH_IDS, TABLE1_RUNS } from '../approaches/catalog';
import { OptionError } from '../core/errors';
import { paramHelp } from '../core/params';
import { chooseRunThreads } from '../backend/settings';
import { EXPERIMENTS, EXPERIMENT_NETWORK, type ExperimentName } from '../data/experiments';
import { mlpConfig } from '../nets/config';
import { SUMMARY_NOTE, summaryTable, table1Order } from '../analysis/summary';
import { MONITORS, type MonitorName } from '../runs/monitors';
import { runExperiment } from '../runs/run';
import { runShape } from '../runs/shape';
import { loadRuns } from '../runs/loader';
import { makePlan } from '../grid/expand';
import { outcomeReport, runLocally, savePlan } from '../grid/runner';
import type { GridFile } from '../grid/schema';
import { fmtTime } from '../training/progress';
import { type ProtocolOpts, collect, fileTag, int, list, protocolOptions, protocolRunOptions } from './options';

/** Every approach with its parameters (defaults = the spec's values), for --help. */
export const approachHelp = Object.values(APPROACHES)
  .map((a) => [`  ${a.id.padEnd(12)} ${a.help}`, ...paramHelp(a.params, ' '.repeat(17))].join('\n'))
  .join('\n');

function monitors(v: string): MonitorName[] {
  const names = list(v);
  for (const n of names)
    if (!(MONITORS as readonly string[]).includes(n))
      throw new OptionError(`--monitor: unknown log '${n}'; choose from ${MONITORS.join(', ')}`);
  return names as MonitorName[];
}

export function runCommand(program: Command): void {
  protocolOptions(
    program
      .command('run')
      .description('train one approach on one experiment and seed; writes RES_DIR/EXPERIMENT_TAG_SEED.{json,txt}')
      .addOption(
        new Option('-e, --experiment <name>', 'experiment (spec §6.1)').choices([...EXPERIMENTS]).makeOptionMandatory(),
      )
      .addOption(new Option('-a, --approach <id>', 'approach (see below)').choices(APPROACH_IDS).makeOptionMandatory())
      .addOption(
        new Option('-s, --seed <n>', 'run seed: task order, split, shuffles, initial weights, dropout')
          .argParser(int('--seed'))
          .default(0),
      )
      .option(
        '-p, --parameter <name=value>',
        'approach parameter, repeatable or comma-separated (e.g. smax=400,c=0.75)',
        collect,
        [],
      )
      .addOption(
        new Option(
          '--tag <name>',
          'name in result files and tables (default: approach id plus non-default parameters)',
        ).argParser(fileTag),
      )
      .addOption(
        new Option(
          '--monitor <logs>',
          `per-epoch logs in the result file, comma-separated: gates (HAT's gates and weight usage, Figs. 5-6), compression (weights kept and validation accuracy, Fig. 7)`,
        ).argParser(monitors),
      )
      .option(
        '--save-model <dir>',
        'save the trained model there when the run completes (hat predict, export, capacity use it)',
      )
      .option(
        '--from-model <dir>',
        "start from a saved model: its learnt tasks must be the experiment's first ones; the run learns the next (growing it by a head for new tasks)",
      )
      .option('--no-resume', 'start afresh even if a checkpoint of the same run exists')
      .addOption(
        new Option(
          '--checkpoint-every <seconds>',
          'seconds between checkpoints within a task (0: after every epoch); one is always written after every task',
        )
          .argParser(int('--checkpoint-every'))
          .default(300),
      ),
  )
    .addHelpText(
      'after',
      `\nApproaches and their parameters (-p name=value; default, meaning, accepted values):\n${approachHelp}\n\n` +
        'The forgetting ratio needs the random and joint runs of the same experiment, seed and options in RES_DIR;\n' +
        'run them too (any order) and `hat table` fills it in.',
    )
    .action(
      async (
        o: ProtocolOpts & {
          experiment: ExperimentName;
          approach: string;
          seed: number;
          parameter: string[];
          tag?: string;
          resume: boolean;
          checkpointEvery: number;
          saveModel?: string;
          fromModel?: string;
          monitor?: MonitorName[];
        },
      ) => {
        // one network per process: TensorFlow's threads can follow it (backend/settings.ts runThreads)
        const options = protocolRunOptions(o);
        const def = approachDef(o.approach);
        if (def.network !== 'none' && EXPERIMENT_NETWORK[o.experiment] === 'mlp') {
          const layers = mlpConfig({ heads: [], hat: def.network === 'hat', hidden: options.hidden }).layers;
          chooseRunThreads(
            'mlp',
            layers.map((l) => l.units),
          );
        }
        const { result, file, approach } = await runExperiment({
          ...options,
          experiment: o.experiment,
          approach: o.approach,
          seed: o.seed,
          parameters: o.parameter,
          tag: o.tag,
          resume: o.resume,
          monitor: o.monitor,
          checkpointEvery: o.checkpointEvery,
          saveModel: o.saveModel,
          fromModel: o.fromModel,
        });
        approach.dispose();
        console.log(summaryTable([result]));
        console.log(`\nwrote ${file}`);
      },
    );

  protocolOptions(
    program
      .command('quick')
      .description(
        "quick reproduction on the embedded MNIST data: HAT and every baseline of the paper's Table 1, with the forgetting-ratio table",
      )
      .addOption(new Option('-e, --experiment <name>', 'experiment').choices(['pmnist', 'mnist2']).default('pmnist'))
      .addOption(new Option('-s, --seed <n>', 'run seed').argParser(int('--seed')).default(0))
      .option('--approaches <ids>', 'comma-separated approaches', TABLE1_RUNS.join(',')),
    { nepochs: 20, resDir: path.join('res', 'quick'), tasks: 4, maxTrain: 2500 },
  )
    .addOption(
      new Option(
        '--workers <n>',
        `runs at once, each its own process (default: one per core, ${os.availableParallelism()} here; as hat grid)`,
      ).argParser(int('--workers', 1)),
    )
    .action(
      async (o: ProtocolOpts & { experiment: ExperimentName; seed: number; approaches: string; workers?: number }) => {
        const ids = list(o.approaches);
        for (const id of ids)
          if (!APPROACHES[id])
            throw new OptionError(`unknown approach '${id}' in --approaches; choose from ${APPROACH_IDS.join(', ')}`);
        // one grid of the approaches (its runner's workers, resuming and progress); the two longest (joint
        // 2m, HAT 1m30s on one thread) first, so that no worker idles at the end while one of them runs
        const longest = ['joint', 'hat'];
        const ordered = [...longest.filter((i) => ids.includes(i)), ...ids.filter((i) => !longest.includes(i))];
        const grid: GridFile = {
          name: `quick-${o.experiment}`,
          grids: [
            {
              experiments: [o.experiment],
              approaches: ordered.map((id) => ({ id, parameters: {} })),
              seeds: [o.seed],
              parameters: {},
              options: {
                nepochs: o.nepochs,
                lr: o.lr,
                patience: o.patience,
                batchSize: o.batchSize,
                ...runShape(o),
              },
            },
          ],
        };
        const plan = makePlan(grid);
        const out = await runLocally('hat quick', {
          plan,
          planFile: savePlan(o.resDir, plan, 'the results'),
          resDir: o.resDir,
          dataDir: o.dataDir,
          backend: o.backend,
          workers: o.workers,
          progress: o.progress,
        });
        const planIds = new Set(plan.runs.map((r) => r.id));
        const results = loadRuns(o.resDir).filter((r) =>
          planIds.has((r.extras.grid as { id?: string } | undefined)?.id ?? ''),
        );
        if (results.length) console.log(`\n${summaryTable(table1Order(results))}`);
        if (out.problems.length) {
          console.log(`\n${outcomeReport(plan.name, o.resDir, out)}`);
          process.exitCode = 1;
        } else console.log(`\n${SUMMARY_NOTE} Results in ${o.resDir}/ (${fmtTime(out.seconds)}).`);
      },
    );
}

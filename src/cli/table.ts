/** `hat table`: the summary of the complete result files of a folder. */
import { type Command, Option } from 'commander';
import { OptionError } from '../core/errors';
import { EXPERIMENTS } from '../data/experiments';
import { byExperimentAndSeed, summaryTable } from '../analysis/summary';
import { loadRuns } from '../runs/loader';

export function tableCommand(program: Command): void {
  program
    .command('table')
    .description('summarise the complete result files of a folder (accuracy and forgetting ratios)')
    .option('--res-dir <dir>', 'results folder', 'res')
    .addOption(new Option('-e, --experiment <name>', 'only this experiment').choices([...EXPERIMENTS]))
    .action((o: { resDir: string; experiment?: string }) => {
      const problems: string[] = [];
      const results = loadRuns(o.resDir, { onProblem: (_f, m) => problems.push(m) }).filter(
        (r) => !o.experiment || r.config.protocol.experiment === o.experiment,
      );
      for (const p of problems) process.stderr.write(`hat table: skipped ${p}\n`);
      if (!results.length)
        throw new OptionError(`no complete result files in ${o.resDir}; run \`hat run\` or \`hat quick\` first`);
      console.log(summaryTable(byExperimentAndSeed(results)));
    });
}

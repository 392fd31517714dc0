/** `hat results DIR`: what a results folder holds (per protocol) and what it says (Table 1, BWT/FWT, Figs. 4, 5, 7). */
import * as fs from 'node:fs';
import { type Command, Option } from 'commander';
import { OptionError } from '../core/errors';
import { makePlan, protocolsPlan } from '../grid/expand';
import { METHODS, type Method, type ProtocolName, SCALES, type Scale } from '../grid/protocols';
import { readGridFile } from '../grid/schema';
import {
  METRICS_NOTE,
  SUMMARY_TABLES,
  type SummaryTable,
  csvTable,
  summarise,
  summaryRecords,
  summaryText,
} from '../grid/summary';
import { int, protocolList } from './options';

interface ResultsOpts {
  protocol?: ProtocolName[];
  scale?: Scale;
  method: Method;
  file?: string;
  format: 'text' | 'csv' | 'json';
  table: SummaryTable;
  depth: number;
}

export function resultsCommand(program: Command): void {
  program
    .command('results')
    .description(
      'summarise a results folder: runs found, complete, partial, failed (and missing from a protocol), the hours ' +
        'the complete runs took and an estimate of their hours on an otherwise idle machine; Table 1 with ' +
        "the paper's numbers, BWT and FWT; the robustness grid, weight usage and compression",
    )
    .argument('<dir>', 'results folder (sub-folders are read too, see --depth)')
    .addOption(
      new Option(
        '--protocol <names>',
        'count the runs of this protocol (several comma-separated, or all) missing from DIR (with --scale)',
      ).argParser(protocolList),
    )
    .addOption(new Option('--scale <scale>', 'the scale of --protocol').choices([...SCALES]))
    .addOption(new Option('--method <method>', 'the method of --protocol').choices([...METHODS]).default('reference'))
    .option('--file <grid.yaml>', 'count the runs of this grid file missing from DIR')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'csv', 'json']).default('text'))
    .addOption(
      new Option('--table <name>', 'with --format csv: which table').choices([...SUMMARY_TABLES]).default('table1'),
    )
    .addOption(new Option('--depth <n>', 'sub-folder levels to read').argParser(int('--depth')).default(2))
    .addHelpText(
      'after',
      `\nTable 1 groups comparable runs (same experiment and protocol options) and shows, per approach, A<=T, rho<=2 and\n` +
        `rho<=T as mean (population std, ddof 0 as the paper's script) over seeds, BWT and FWT, and the paper's numbers;\n` +
        `IMM-mode and PNN show the reference code's variant (tags *-ref) and the paper's method apart.\n\n${METRICS_NOTE}`,
    )
    .action((dir: string, o: ResultsOpts) => {
      if (o.protocol && o.file) throw new OptionError('give --protocol or --file, not both');
      if (o.protocol && !o.scale) throw new OptionError(`--protocol needs --scale (${SCALES.join(', ')})`);
      if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
        throw new OptionError(`${dir}: no such results folder (the folder a \`hat run\` or \`hat grid\` wrote into)`);
      const plan = o.protocol
        ? protocolsPlan(o.protocol, o.scale!, o.method)
        : o.file
          ? makePlan(readGridFile(o.file))
          : undefined;
      const s = summarise(dir, { depth: o.depth, plan });
      if (o.format === 'json') process.stdout.write(JSON.stringify(s, null, 1) + '\n');
      else if (o.format === 'csv') process.stdout.write(csvTable(summaryRecords(s, o.table)));
      else console.log(summaryText(s));
    });
}

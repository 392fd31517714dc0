/**
 * The `hat` command line: one file per command in this folder. `hat --help` and `hat COMMAND --help`
 * describe every option. Errors a user can act on (core/errors.ts UserError) print their message alone and
 * exit with status 2; anything else is a bug and shows its stack.
 */
import { Command } from 'commander';
import { UserError } from '../core/errors';
import { backendCommand } from './backend';
import { dataCommand } from './data';
import { gridCommand } from './grid';
import { resultsCommand } from './results';
import { runCommand } from './run';
import { tableCommand } from './table';

export function buildProgram(): Command {
  const program = new Command('hat')
    .description('HAT (hard attention to the task, ICML 2018) and its baselines on TensorFlow.js')
    .showHelpAfterError('(run with --help for the options)')
    .configureOutput({ outputError: (s, write) => write(s) });
  runCommand(program);
  tableCommand(program);
  gridCommand(program);
  resultsCommand(program);
  dataCommand(program);
  backendCommand(program);
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    const err = e as Error;
    const known = err instanceof UserError;
    process.stderr.write(`hat: ${known ? err.message : (err.stack ?? String(err))}\n`);
    process.exitCode = known ? 2 : 1;
  }
}

if (require.main === module) void main();

/**
 * The `hat` command line: one file per command in this folder. `hat --help` and `hat COMMAND --help`
 * describe every option. Errors a user can act on (core/errors.ts UserError) print their message alone and
 * exit with status 2; anything else is a bug: one line saying so (exit 1), its stack only with `--debug`
 * (or HAT_DEBUG=1). `--verbose` (or HAT_TF_LOG=1) lets TensorFlow's own start-up log through.
 */
import { Command, CommanderError, Option } from 'commander';
import { ONE_THREAD_MLP_UNITS, setNativeSettings } from '../backend/settings';
import { UserError } from '../core/errors';
import { backendCommand } from './backend';
import { dataCommand } from './data';
import { gridCommand } from './grid';
import { resultsCommand } from './results';
import { modelCommands } from './model';
import { int } from './options';
import { runCommand } from './run';
import { tableCommand } from './table';

const truthy = (v: string | undefined): boolean => !!v && !/^(0|false|no|off)$/i.test(v);

export function buildProgram(): Command {
  const program = new Command('hat')
    .description('HAT (hard attention to the task, ICML 2018) and its baselines on TensorFlow.js')
    .option('--debug', 'show the stack trace of any error (also HAT_DEBUG=1)')
    .option('--verbose', "let TensorFlow's own log messages through (also HAT_TF_LOG=1)")
    .option(
      '--tf-threads <n>',
      `native TensorFlow's intra- and inter-op threads (also TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS; default: one per core, but 1 for \`hat run\` of an MLP of up to ${ONE_THREAD_MLP_UNITS} units per layer, which trains faster so; \`hat grid --threads\` sets its workers')`,
      int('--tf-threads', 1),
    )
    .addOption(
      new Option(
        '--onednn <on|off>',
        "native TensorFlow's oneDNN kernels (also TF_ENABLE_ONEDNN_OPTS=1/0; off measured 40% slower)",
      ).choices(['on', 'off']),
    )
    .showHelpAfterError('(run with --help for the options)')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ outputError: (s, write) => write(s) })
    .hook('preSubcommand', (cmd) => {
      // through the environment, so that grid workers (child processes) inherit them
      const o = cmd.opts<{ debug?: boolean; verbose?: boolean; tfThreads?: number; onednn?: 'on' | 'off' }>();
      if (o.debug) process.env.HAT_DEBUG = '1';
      if (o.verbose) process.env.HAT_TF_LOG = '1';
      setNativeSettings({ threads: o.tfThreads, onednn: o.onednn === undefined ? undefined : o.onednn === 'on' });
    });
  runCommand(program);
  modelCommands(program);
  tableCommand(program);
  gridCommand(program);
  resultsCommand(program);
  dataCommand(program);
  backendCommand(program);
  return program;
}

/** Where the command line writes; tests pass their own. */
export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const PROCESS_IO: CliIO = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

/** The one message an error gives the user (with its stack under --debug / HAT_DEBUG=1). */
export function errorMessage(e: unknown, debug = truthy(process.env.HAT_DEBUG)): string {
  const err = e instanceof Error ? e : new Error(String(e));
  if (debug) return `hat: ${err.stack ?? err.message}\n`;
  if (err instanceof UserError) return `hat: ${err.message}\n`;
  const first = err.message.split('\n')[0] || err.name;
  return (
    `hat: internal error (${err.name}): ${first}\n` +
    'This is a bug in hat-ts, not in what you typed. Run the command again with --debug (or HAT_DEBUG=1) for the stack trace, and report it.\n'
  );
}

/** Runs the command line on `argv` (as process.argv: node, script, args...); resolves to the exit status. */
export async function runCli(argv: readonly string[], io: CliIO = PROCESS_IO): Promise<number> {
  const program = buildProgram();
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program))
    c.exitOverride().configureOutput({ writeOut: io.out, writeErr: io.err, outputError: (s, write) => write(s) });
  const debug = () => truthy(process.env.HAT_DEBUG) || argv.includes('--debug');
  // a status set by an earlier command of this process (tests run several) is not this command's
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv]);
    // a command may have set its own status (hat grid: 1 when a run failed)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    // commander has already printed its own message (unknown option, invalid choice, --help)
    if (e instanceof CommanderError) return e.exitCode;
    io.err(errorMessage(e, debug()));
    return e instanceof UserError ? 2 : 1;
  }
}

async function main(): Promise<void> {
  const fatal = (e: unknown) => {
    process.stderr.write(errorMessage(e, truthy(process.env.HAT_DEBUG) || process.argv.includes('--debug')));
    process.exit(e instanceof UserError ? 2 : 1);
  };
  // a closed pipe (`hat results DIR | head`) ends the command quietly
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(0) : fatal(e)));
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  process.exitCode = await runCli(process.argv);
}

if (require.main === module) void main();

/** Where a notebook is: the project root, its results, where its live runs write; and loading those results. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadRuns } from '../runs/loader';
import type { RunResult } from '../runs/result-file';
import { UserError } from '../core/errors';
import { display, escapeHtml, inlinePlotly } from './display';

/** The project root (the folder of hat-ts' package.json), found from this file. */
export function projectRoot(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = fs.realpathSync(start);
    for (;;) {
      const pkg = path.join(dir, 'package.json');
      if (fs.existsSync(pkg) && fs.realpathSync(dir) === dir) {
        try {
          if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'hat-ts') return dir;
        } catch {
          /* not ours */
        }
      }
      const up = path.dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error('cannot find the hat-ts project folder');
}

export interface NotebookContext {
  root: string;
  /** Where results are read from: $HAT_RES_DIR or ROOT/res. */
  resDir: string;
  /** Where this notebook's live runs write: RES/notebook-runs/NAME. */
  runDir: string;
}

/**
 * First cell of every notebook: work from the project root (so data and result paths mean the same as on
 * the command line), inline plotly.js, and say where results are read from.
 */
export function setupNotebook(name: string): NotebookContext {
  const root = projectRoot();
  process.chdir(root);
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  const resDir = path.resolve(process.env.HAT_RES_DIR ?? path.join(root, 'res'));
  const runDir = path.join(resDir, 'notebook-runs', name);
  inlinePlotly();
  const shown = runDir.startsWith(root + path.sep) ? path.relative(root, runDir) : runDir;
  display().html(
    `<p style="color:#555">hat-ts notebook <code>${escapeHtml(name)}</code>: results from <code>${escapeHtml(resDir)}</code>; live runs write to <code>${escapeHtml(shown)}</code>.</p>`,
  );
  return { root, resDir, runDir };
}

/** The committed reproduction at lite scale (`hat grid --scale lite`), relative to the project root. */
export const REFERENCE_RESULTS = path.join('res', 'reference', 'lite');

/** Folders of a results folder that hold no results of the user's own experiments. */
const NOT_YOURS = ['report', 'notebook-runs', 'reference', 'test-artifacts', 'bench', 'models', '.grid'];

/** Where a notebook's results come from: the user's own, or the committed lite reproduction. */
export interface ResultSource {
  runs: RunResult[];
  /** 'yours' (the results folder) or 'reference' (the committed lite results). */
  kind: 'yours' | 'reference';
  dir: string;
}

/** What a notebook draws and the grid protocol that produces it (for the message when nothing is found). */
export interface ResultNeed {
  what: string;
  protocol: string;
}

/**
 * The results a notebook draws: the user's own (the results folder without the committed reference, reports,
 * models and live runs) when `usable` accepts them, else the committed lite reproduction; says which in the
 * notebook. When neither has them, a UserError names the command that makes them.
 */
export function notebookResults(
  ctx: NotebookContext,
  usable: (runs: RunResult[]) => boolean,
  need: ResultNeed,
): ResultSource {
  const own = loadRuns(ctx.resDir, { depth: 3, skip: NOT_YOURS });
  const referenceDir = path.join(ctx.root, REFERENCE_RESULTS);
  const shown = (dir: string) => (dir.startsWith(ctx.root + path.sep) ? path.relative(ctx.root, dir) : dir);
  if (usable(own)) {
    display().markdown(
      `**Results: your own**, ${own.length} result files under \`${shown(ctx.resDir)}\`, for ${need.what}.`,
    );
    return { runs: own, kind: 'yours', dir: ctx.resDir };
  }
  const reference = loadRuns(referenceDir, { depth: 1, skip: NOT_YOURS });
  if (!usable(reference))
    throw new UserError(
      `no results for ${need.what} in ${shown(ctx.resDir)} nor in the committed ${REFERENCE_RESULTS}: ` +
        `run \`hat grid --protocol ${need.protocol} --scale lite\` (or --scale paper) and run this notebook again`,
    );
  display().markdown(
    `**Results: the committed lite reproduction**, ${reference.length} result files in \`${REFERENCE_RESULTS}\` ` +
      `(\`hat grid --protocol ${need.protocol} --scale lite\`), for ${need.what}: none of your own in \`${shown(ctx.resDir)}\`.`,
  );
  return { runs: reference, kind: 'reference', dir: referenceDir };
}

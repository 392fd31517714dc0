/** Where a notebook is: the project root, its results, where its live runs write; and loading those results. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadRuns } from '../runs/loader';
import type { RunResult } from '../runs/result-file';
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

/** Complete results under a results folder (3 levels; not the reports, nor notebook live runs unless asked), with their forgetting ratios. */
export function loadNotebookRuns(resDir: string, opts: { includeNotebookRuns?: boolean } = {}): RunResult[] {
  return loadRuns(resDir, { depth: 3, skip: opts.includeNotebookRuns ? ['report'] : ['report', 'notebook-runs'] });
}

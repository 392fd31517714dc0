/**
 * What the tslab notebooks (notebooks/*.ipynb) share: finding the project and its results, loading result
 * files into data frames (danfojs) and summaries (arquero), showing tables and interactive Plotly figures,
 * and running a small live experiment when the results a notebook needs are missing.
 *
 * Figures are Plotly specs from src/figures.ts. plotly.js (the npm package plotly.js-dist-min) is inlined
 * once per notebook by `setupNotebook`, and every figure is a div plus a short drawing script: this renders
 * live in JupyterLab and in nbconvert's static HTML without any network access.
 *
 * Outside a tslab kernel (tests, scripts) the display functions write to an in-memory list (`captured`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Danfo from 'danfojs/dist/danfojs-browser/src/index';
import type * as Arquero from 'arquero';
import { TABLE1_APPROACHES } from './approaches/index';
import { ExperimentName } from './data/experiments';
import { COMPRESSION_FORMAT, CompressionLog, MONITOR_FORMAT, MonitorLog, compressionFile, monitorFile, runCapacityMonitor, runCompression } from './monitor';
import { PlotlyFigure, Row } from './figures';
import { RESULT_FORMAT, RunResult } from './results';
import { attachForgetting, runExperiment } from './run';
import { createProgress } from './progress';
import { writeFileAtomic } from './io';

// ---------------------------------------------------------------------------------------------------------
// display

export interface Display {
  html(s: string): void;
  markdown(s: string): void;
  text(s: string): void;
}

/** Outputs shown outside a kernel (newest last). */
export const captured: { type: 'html' | 'markdown' | 'text'; content: string }[] = [];

const captureDisplay: Display = {
  html: (s) => void captured.push({ type: 'html', content: s }),
  markdown: (s) => void captured.push({ type: 'markdown', content: s }),
  text: (s) => void captured.push({ type: 'text', content: s }),
};

/** tslab's display when running in its kernel, otherwise the capture list. */
export function display(): Display {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const tslab = require('tslab') as { display: Display & { id?: unknown } };
    // outside a kernel tslab's display throws "Not ready" on use; probe with an empty text output is not
    // possible without side effects, so ask tslab whether a kernel is attached
    const ready = (tslab.display as unknown as { raw?: unknown }).raw !== undefined && kernelAttached();
    return ready ? tslab.display : captureDisplay;
  } catch {
    return captureDisplay;
  }
}

function kernelAttached(): boolean {
  // tslab's kernel process is started as `tslab kernel --config-path FILE`
  return process.argv.includes('kernel') && process.argv.some((a) => a.includes('--config-path'));
}

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Markdown output (a sentence or two of explanation, or a warning). */
export function say(markdown: string): void {
  display().markdown(markdown);
}

/** A visible note that a notebook falls back to a live experiment. */
export function warnFallback(what: string, why: string): void {
  display().html(`<div class="hat-fallback" style="border-left:4px solid #e69f00;padding:4px 10px;background:#fff8e6"><b>Fallback:</b> ${escapeHtml(why)} Running ${escapeHtml(what)} live instead (small, for illustration; its numbers are not the paper's protocol).</div>`);
}

interface NotebookGlobals {
  __hatPlotlyShown?: boolean;
  __hatFigureCount?: number;
}
const g = globalThis as unknown as NotebookGlobals;

/** The plotly.js library as an inline script (once per page). */
export function plotlyLibraryHtml(): string {
  const file = require.resolve('plotly.js-dist-min');
  const src = fs.readFileSync(file, 'utf8').replace(/<\/script/gi, '<\\/script');
  // shadow module/exports/define so that the bundle always installs window.Plotly (also where require.js is loaded)
  return `<script type="text/javascript">/* plotly.js, inlined by hat-ts */(function(module, exports, define){\n${src}\n}).call(window);</script>`;
}

/** The html of one figure: a div and the script that draws it once window.Plotly is there. */
export function figureHtml(fig: PlotlyFigure, id = `hat-fig-${Date.now().toString(36)}-${(g.__hatFigureCount = (g.__hatFigureCount ?? 0) + 1)}`): string {
  const height = Number((fig.layout as { height?: number }).height ?? 450);
  const spec = JSON.stringify({ data: fig.data, layout: { autosize: true, margin: { t: 60, l: 70, r: 30, b: 60 }, ...fig.layout } }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)).replace(/<\//g, '<\\/');
  return (
    `<div id="${id}" class="hat-figure" style="width:100%;min-width:480px;height:${height}px"></div>` +
    `<script type="text/javascript">(function(){var spec=${spec};var tries=0;function draw(){var el=document.getElementById(${JSON.stringify(id)});` +
    `if(!el||!window.Plotly){if(tries++<400){setTimeout(draw,50);}return;}window.Plotly.newPlot(el,spec.data,spec.layout,{responsive:true,displaylogo:false});}draw();})();</script>`
  );
}

/** Shows a Plotly figure (interactive in JupyterLab and in the HTML export). */
export function showFigure(fig: PlotlyFigure): void {
  const d = display();
  if (!g.__hatPlotlyShown) {
    d.html(plotlyLibraryHtml());
    g.__hatPlotlyShown = true;
  }
  d.html(figureHtml(fig));
}

/** Shows rows (or an arquero table) as an HTML table with a caption. */
export function showTable(rows: Row[] | Arquero.ColumnTable, caption?: string, opts: { limit?: number } = {}): void {
  const aq = arquero();
  const table = Array.isArray(rows) ? aq.from(rows) : rows;
  const html = table.toHTML({ limit: opts.limit ?? 100, null: () => '' });
  display().html(`<div class="hat-table">${caption ? `<p><b>${escapeHtml(caption)}</b></p>` : ''}${html}</div>`);
}

// ---------------------------------------------------------------------------------------------------------
// libraries with awkward typings

/** danfojs (typed through its deep declaration path, which tslab's TypeScript does not find by itself). */
export function danfo(): typeof Danfo {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('danfojs') as typeof Danfo;
}

/** arquero (an ES module, loaded through require on Node >= 20.19). */
export function arquero(): typeof Arquero {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('arquero') as typeof Arquero;
}

// ---------------------------------------------------------------------------------------------------------
// project, results

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
  g.__hatPlotlyShown = false;
  const d = display();
  d.html(plotlyLibraryHtml());
  g.__hatPlotlyShown = true;
  d.html(`<p style="color:#555">hat-ts notebook <code>${escapeHtml(name)}</code>: results from <code>${escapeHtml(resDir)}</code>; live runs write to <code>${escapeHtml(runDir.startsWith(root + path.sep) ? path.relative(root, runDir) : runDir)}</code>.</p>`);
  return { root, resDir, runDir };
}

export type AnyLog = { file: string } & ({ kind: 'run'; result: RunResult } | { kind: 'monitor'; log: MonitorLog } | { kind: 'compression'; log: CompressionLog });

/** Every result / monitor / compression file under a folder (3 levels), skipping notebook-runs and report. */
export function scanResults(resDir: string, opts: { includeNotebookRuns?: boolean } = {}): AnyLog[] {
  const out: AnyLog[] = [];
  const walk = (dir: string, depth: number) => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (depth < 3 && entry.name !== 'report' && (opts.includeNotebookRuns || entry.name !== 'notebook-runs')) walk(p, depth + 1);
      } else if (entry.name.endsWith('.json') && !entry.name.endsWith('.ckpt.json')) {
        try {
          const json = JSON.parse(fs.readFileSync(p, 'utf8')) as { format?: string; status?: string };
          if (json.format === RESULT_FORMAT && json.status === 'complete') out.push({ file: p, kind: 'run', result: json as unknown as RunResult });
          else if (json.format === MONITOR_FORMAT) out.push({ file: p, kind: 'monitor', log: json as unknown as MonitorLog });
          else if (json.format === COMPRESSION_FORMAT) out.push({ file: p, kind: 'compression', log: json as unknown as CompressionLog });
        } catch {
          /* not a result file */
        }
      }
    }
  };
  walk(resDir, 0);
  return out;
}

/** Complete run results under a folder, with forgetting ratios attached when their references are beside them. */
export function loadRuns(resDir: string, opts: { includeNotebookRuns?: boolean } = {}): RunResult[] {
  return scanResults(resDir, opts).flatMap((l) => {
    if (l.kind !== 'run') return [];
    if (!l.result.forgetting) attachForgetting(l.result, path.dirname(l.file));
    return [l.result];
  });
}

/**
 * One row per (run, t, u): the long format of the accuracy matrices and forgetting ratios, as a danfojs
 * DataFrame (the "load" step of the notebooks).
 */
export function resultsFrame(results: RunResult[]): Danfo.DataFrame {
  const rows = results.flatMap((r) =>
    r.accuracy.flatMap((row, t) =>
      row.slice(0, t + 1).map((acc, u) => ({
        experiment: r.config.protocol.experiment, approach: r.config.tag, seed: r.config.protocol.seed, t: t + 1, u: u + 1,
        task: r.data.tasks[u]?.name ?? String(u), acc, rho: r.forgetting ? r.forgetting.ratios[t][u] : NaN,
      })),
    ),
  );
  const dfd = danfo();
  return new dfd.DataFrame(rows.length ? rows : [{ experiment: '', approach: '', seed: 0, t: 0, u: 0, task: '', acc: NaN, rho: NaN }]);
}

/** A danfojs frame as an arquero table (the "summarise" step). */
export function toArquero(df: Danfo.DataFrame): Arquero.ColumnTable {
  const dfd = danfo();
  return arquero().from(dfd.toJSON(df) as object[]);
}

// ---------------------------------------------------------------------------------------------------------
// live fallbacks (small on purpose: seconds to a minute on 2 CPU cores)

/** The protocol of every live fallback: permuted MNIST, few tasks, few samples, small MLP, 2 epochs. */
export const FALLBACK = { experiment: 'pmnist' as ExperimentName, tasks: 3, maxTrain: 1000, maxTest: 500, hidden: [100, 100], nepochs: 2, seeds: [0, 1] };

function fallbackRun(runDir: string, approach: string, seed: number, parameters: string[] = []) {
  return runExperiment({
    experiment: FALLBACK.experiment, approach, seed, parameters, tasks: FALLBACK.tasks, maxTrain: FALLBACK.maxTrain, maxTest: FALLBACK.maxTest,
    hidden: FALLBACK.hidden, train: { nepochs: FALLBACK.nepochs }, resDir: runDir, resume: false, progress: createProgress('quiet'),
  });
}

/** Every approach of Table 1 and the references, for the fallback seeds (forgetting figure and table). */
export async function fallbackForgetting(runDir: string, approaches = TABLE1_APPROACHES): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (const seed of FALLBACK.seeds) {
    for (const a of approaches) {
      const { result, approach } = await fallbackRun(runDir, a, seed);
      approach.dispose();
      out.push(result);
    }
  }
  return loadRuns(runDir, { includeNotebookRuns: true }).filter((r) => out.some((o) => o.config.tag === r.config.tag && o.config.protocol.seed === r.config.protocol.seed));
}

/** A small (smax, c) grid of HAT on seed 0, with its references. */
export async function fallbackGrid(runDir: string, smax = [25, 100, 400], c = [0.1, 0.75, 2.5]): Promise<RunResult[]> {
  for (const a of ['random', 'joint']) (await fallbackRun(runDir, a, 0)).approach.dispose();
  for (const s of smax) for (const cv of c) (await fallbackRun(runDir, 'hat', 0, [`smax=${s}`, `c=${cv}`])).approach.dispose();
  return loadRuns(runDir, { includeNotebookRuns: true });
}

/** HAT with per-epoch monitoring on the fallback protocol (4 tasks). */
export function fallbackMonitor(runDir: string): Promise<MonitorLog> {
  return runCapacityMonitor({
    experiment: FALLBACK.experiment, seed: 0, tasks: 4, maxTrain: FALLBACK.maxTrain, maxTest: FALLBACK.maxTest, hidden: FALLBACK.hidden,
    train: { nepochs: 3 }, file: monitorFile(runDir, FALLBACK.experiment, 0),
  });
}

/**
 * A single-task compression run on the first permuted-MNIST task with the fast MLP (400-400, 5,000 images,
 * 10 epochs, about 10 s): the trend of Fig. 7 (fewer weights kept epoch after epoch, accuracy rising), not
 * its AlexNet numbers.
 */
export async function fallbackCompression(runDir: string): Promise<CompressionLog[]> {
  const log = await runCompression({ experiment: 'pmnist', task: 0, seed: 0, maxTrain: 5000, maxTest: 1000, hidden: [400, 400], train: { nepochs: 10 } });
  writeFileAtomic(compressionFile(runDir, log.dataset, 0), JSON.stringify(log));
  return [log];
}

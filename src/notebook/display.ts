/**
 * Showing things in a tslab notebook: markdown, HTML tables (arquero) and interactive Plotly figures.
 * plotly.js (the npm package plotly.js-dist-min) is inlined once per notebook by `setupNotebook`
 * (./project.ts), and every figure is a div plus a short drawing script: this renders live in JupyterLab
 * and in nbconvert's static HTML without any network access. Outside a tslab kernel (tests, scripts) the
 * display functions write to an in-memory list (`captured`).
 */
import * as fs from 'node:fs';
import type { PlotlyFigure, Row } from '../figures/plotly';
import { arquero } from './frames';
import type * as Arquero from 'arquero';

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

export const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Markdown output (a sentence or two of explanation, or a warning). */
export function say(markdown: string): void {
  display().markdown(markdown);
}

interface NotebookGlobals {
  __hatPlotlyShown?: boolean;
  __hatFigureCount?: number;
}
const g = globalThis as unknown as NotebookGlobals;

/**
 * The plotly.js library for the page: a script tag of the file named by $HAT_PLOTLY_SRC when set (the HTML
 * reports share one copy beside them), else the library inlined (live notebooks, self-contained files).
 */
export function plotlyLibraryHtml(): string {
  const src = process.env.HAT_PLOTLY_SRC;
  if (src) return `<script type="text/javascript" src="${escapeHtml(src)}"></script>`;
  return inlinedPlotly();
}

function inlinedPlotly(): string {
  const file = require.resolve('plotly.js-dist-min');
  const src = fs.readFileSync(file, 'utf8').replace(/<\/script/gi, '<\\/script');
  // shadow module/exports/define so that the bundle always installs window.Plotly (also where require.js is loaded)
  return `<script type="text/javascript">/* plotly.js, inlined by hat-ts */(function(module, exports, define){\n${src}\n}).call(window);</script>`;
}

/** The html of one figure: a div and the script that draws it once window.Plotly is there. */
export function figureHtml(
  fig: PlotlyFigure,
  id = `hat-fig-${Date.now().toString(36)}-${(g.__hatFigureCount = (g.__hatFigureCount ?? 0) + 1)}`,
): string {
  const height = Number((fig.layout as { height?: number }).height ?? 450);
  const spec = JSON.stringify(
    { data: fig.data, layout: { autosize: true, margin: { t: 60, l: 70, r: 30, b: 60 }, ...fig.layout } },
    (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
  ).replace(/<\//g, '<\\/');
  return (
    `<div id="${id}" class="hat-figure" style="width:100%;min-width:480px;height:${height}px"></div>` +
    `<script type="text/javascript">(function(){var spec=${spec};var tries=0;function draw(){var el=document.getElementById(${JSON.stringify(id)});` +
    `if(!el||!window.Plotly){if(tries++<400){setTimeout(draw,50);}return;}window.Plotly.newPlot(el,spec.data,spec.layout,{responsive:true,displaylogo:false});}draw();})();</script>`
  );
}

/** Inlines plotly.js into the notebook (again: a new notebook page has none), once per `setupNotebook`. */
export function inlinePlotly(): void {
  g.__hatPlotlyShown = false;
  display().html(plotlyLibraryHtml());
  g.__hatPlotlyShown = true;
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

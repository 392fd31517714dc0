/**
 * The units each task uses: per gated layer, a grid with one cell per unit, filled with the colours of the
 * tasks whose gate keeps it open (striped where tasks share it, empty where none does); the selected task's
 * cells stand out, the others are dimmed.
 */
import type { ExportMetadata } from '../../src/models/export';

export interface MaskTask {
  /** Short label, e.g. "task 1". */
  label: string;
  colour: string;
  masks: ExportMetadata['masks'];
}

/** Okabe and Ito's colour-blind safe palette (black left out). */
export const TASK_COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#999999'];

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Equal hard-edged stripes of the given colours. */
function stripes(colours: string[]): string {
  if (colours.length === 1) return colours[0];
  const n = colours.length;
  const stops = colours.map((c, i) => `${c} ${((100 * i) / n).toFixed(1)}% ${((100 * (i + 1)) / n).toFixed(1)}%`);
  return `linear-gradient(135deg, ${stops.join(', ')})`;
}

/** Draws the legend and one grid per layer into `root` (replacing what was there). */
export function renderMasks(root: HTMLElement, tasks: MaskTask[], selected: number): void {
  root.replaceChildren();
  const legend = el('ul', { class: 'legend', 'aria-label': 'task colours' });
  tasks.forEach((t, i) => {
    const item = el('li', i === selected ? { class: 'selected' } : {});
    item.append(el('span', { class: 'swatch', style: `background:${t.colour}`, 'aria-hidden': 'true' }), t.label);
    legend.append(item);
  });
  if (tasks.length > 1) {
    const shared = el('li');
    shared.append(
      el('span', {
        class: 'swatch',
        style: `background:${stripes(tasks.map((t) => t.colour))}`,
        'aria-hidden': 'true',
      }),
      'shared',
    );
    legend.append(shared);
  }
  const free = el('li');
  free.append(el('span', { class: 'swatch free', 'aria-hidden': 'true' }), 'unused');
  legend.append(free);
  root.append(legend);

  const layers = tasks[0]?.masks.map((m) => ({ layer: m.layer, units: m.units })) ?? [];
  for (const { layer, units } of layers) {
    const open = tasks.map((t) => new Set(t.masks.find((m) => m.layer === layer)?.open ?? []));
    const users = Array.from({ length: units }, (_, u) => open.flatMap((s, i) => (s.has(u) ? [i] : [])));
    const shared = users.filter((u) => u.length > 1).length;
    const unused = users.filter((u) => u.length === 0).length;
    const counts = tasks.map((t, i) => `${t.label} ${open[i].size}`).join(', ');
    const summary = `${layer}: ${units} units; ${counts}${tasks.length > 1 ? `; shared ${shared}` : ''}; unused ${unused}`;

    const figure = el('figure', { class: 'layer', 'data-layer': layer });
    figure.append(el('figcaption', {}, summary));
    const cols = Math.min(40, Math.ceil(Math.sqrt(2 * units)));
    const grid = el('div', {
      class: 'grid',
      role: 'img',
      'aria-label': `unit grid of ${summary}`,
      style: `grid-template-columns: repeat(${cols}, var(--cell))`,
    });
    users.forEach((who, u) => {
      const cell = el('span', {
        class: `cell${who.length ? ' open' : ''}${who.includes(selected) ? ' selected' : ''}`,
        'data-unit': String(u),
        'data-tasks': who.map((i) => String(i + 1)).join(' '),
        title: `${layer} unit ${u}: ${who.length ? who.map((i) => tasks[i].label).join(', ') : 'unused'}`,
      });
      if (who.length) cell.style.background = stripes(who.map((i) => tasks[i].colour));
      grid.append(cell);
    });
    figure.append(grid);
    root.append(figure);
  }
}

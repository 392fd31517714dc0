/**
 * Grid files (YAML or JSON): which runs a grid holds. The shape is checked with zod, the approach parameters
 * against each approach's own schema (approaches/catalog.ts); a bad file stops with one message naming the
 * file and the field ("grid.yaml: approaches[2].parameters.smax[1]: must be a number > 0, got -3").
 *
 *     name: my-grid                          # names the plan; letters, digits, . _ + -
 *     experiments: [mnist2, pmnist]
 *     approaches:                            # an id, or {id, parameters, tag}
 *       - random
 *       - joint
 *       - id: hat
 *         parameters: { smax: [25, 400], c: 0.75 }   # a value or a list of values (cartesian product)
 *     seeds: [0, 1, 2]                       # or {from: 0, to: 9}
 *     options: { nepochs: 10, maxTrain: 1000, hidden: [100] }
 *     parameters: { clipNorm: [100, 1000] }  # for every approach that declares them (its own win)
 *
 * Several blocks (each with its own experiments, approaches, seeds, options) go under `grids: [...]` beside
 * `name`. No TensorFlow.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { z } from 'zod';
import { APPROACH_IDS, APPROACH_INFO } from '../approaches/catalog';
import { OptionError } from '../core/errors';
import { type ParamSpec, type ParamValue, acceptedValues, invalidReason } from '../core/params';
import { DATASETS } from '../data/datasets';
import { EXPERIMENTS, type ExperimentName } from '../data/experiments';
import { INIT_SCHEMES } from '../nets/config';
import { MONITORS, type MonitorName } from '../runs/monitors';
import type { RunShape } from '../runs/shape';

/** A grid file that is not valid: the message names the file and the field. */
export class GridFileError extends OptionError {
  override name = 'GridFileError';
}

/** The protocol options a grid sets for all its runs (spec §4; the caps of quick runs). */
export interface GridOptions extends RunShape {
  nepochs?: number;
  lr?: number;
  patience?: number;
  batchSize?: number;
  monitor?: MonitorName[];
}

/** One approach of a block, normalised: every parameter given as a list of values. */
export interface GridApproach {
  id: string;
  parameters: Record<string, ParamValue[]>;
  tag?: string;
}

export interface GridBlock {
  experiments: ExperimentName[];
  approaches: GridApproach[];
  seeds: number[];
  options: GridOptions;
  /** Values for every approach of the block that declares the parameter (an approach's own win). */
  parameters: Record<string, ParamValue[]>;
}

/** A checked grid: its name and its blocks. */
export interface GridFile {
  name: string;
  grids: GridBlock[];
}

// --- the input shape (what a file may say) ---

const scalar = z.union([z.number(), z.string(), z.boolean()], { error: 'must be a number, a string or true/false' });
const values = z.union([scalar, z.array(scalar)], { error: 'must be a value or a list of values' });
const valueMap = z.record(z.string(), values);
const count = (min: number) => z.number().int().min(min);
const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const name = (what: string) =>
  z.string().regex(NAME, { error: `${what} must be letters, digits, '.', '_', '+' or '-' (not starting with one)` });

const approachInput = z.union(
  [
    z.string(),
    z.strictObject({
      id: z.string(),
      parameters: valueMap.optional(),
      tag: name('a tag').optional(),
    }),
  ],
  { error: 'must be an approach id or {id, parameters, tag}' },
);

const seedsInput = z.union(
  [
    z.array(count(0)).min(1),
    z.strictObject({ from: count(0), to: count(0) }).refine((s) => s.to >= s.from, {
      error: 'to must be >= from',
      path: ['to'],
    }),
  ],
  { error: 'must be a list of seeds or {from, to}' },
);

const optionsInput = z.strictObject({
  nepochs: count(1).optional(),
  lr: z.number().gt(0).optional(),
  patience: count(1).optional(),
  batchSize: count(1).optional(),
  tasks: count(1).optional(),
  datasets: z
    .array(z.enum(DATASETS.map((d) => d.name) as [string, ...string[]]))
    .min(1)
    .optional(),
  maxTrain: count(1).optional(),
  maxTest: count(1).optional(),
  validation: z.number().gt(0).lt(1).optional(),
  hidden: z.array(count(1)).min(1).max(3).optional(),
  init: z.enum(INIT_SCHEMES).optional(),
  monitor: z.array(z.enum(MONITORS)).optional(),
});

const blockFields = {
  experiments: z.array(z.enum(EXPERIMENTS)).min(1),
  approaches: z.array(approachInput).min(1),
  seeds: seedsInput,
  options: optionsInput.optional(),
  parameters: valueMap.optional(),
};
const blockInput = z.strictObject(blockFields);
const fileInput = z.union(
  [
    z.strictObject({ name: name('name'), ...blockFields }),
    z.strictObject({ name: name('name'), grids: z.array(blockInput).min(1) }),
  ],
  { error: 'must be a mapping with name, experiments, approaches, seeds (and options, parameters), or name and grids' },
);

/** A grid as a file (or a protocol) spells it. */
export type GridFileInput = z.input<typeof fileInput>;
export type GridBlockInput = z.input<typeof blockInput>;
export type GridApproachInput = z.input<typeof approachInput>;

// --- messages ---

const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** `approaches[2].parameters.smax[1]` */
export function fieldPath(p: readonly PropertyKey[]): string {
  return p
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`))
    .join('')
    .replace(/^\./, '');
}

const TYPE_WORDS: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

type Issue = z.core.$ZodIssue;

/** The innermost issue of a union (the branch that got furthest), or the union's own. */
function deepest(issue: Issue, base: PropertyKey[]): { issue: Issue; path: PropertyKey[] } {
  if (issue.code !== 'invalid_union' || !issue.errors.length) return { issue, path: [...base, ...issue.path] };
  const here = [...base, ...issue.path];
  let best: { issue: Issue; path: PropertyKey[] } | undefined;
  for (const branch of issue.errors) {
    for (const sub of branch) {
      const d = deepest(sub, here);
      if (d.path.length > here.length && (!best || d.path.length > best.path.length)) best = d;
    }
  }
  return best ?? { issue, path: here };
}

function describe(issue: Issue): string {
  const got = 'input' in issue ? `, got ${show(issue.input)}` : '';
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}${got}`;
    case 'too_small':
      return issue.origin === 'array'
        ? `must list at least ${String(issue.minimum)} item${Number(issue.minimum) === 1 ? '' : 's'}`
        : `must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}${got}`;
    case 'too_big':
      return issue.origin === 'array'
        ? `must list at most ${String(issue.maximum)} items`
        : `must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}${got}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}${got}`;
    case 'invalid_format':
      return `${issue.message}${got}`;
    case 'unrecognized_keys':
      return '';
    default:
      return `${issue.message}${got}`;
  }
}

const KNOWN_FIELDS: Record<string, readonly string[]> = {
  '': ['name', 'experiments', 'approaches', 'seeds', 'options', 'parameters', 'grids'],
  options: Object.keys(optionsInput.shape),
  approach: ['id', 'parameters', 'tag'],
  seeds: ['from', 'to'],
};

function unknownKeyMessage(p: PropertyKey[], keys: string[]): string {
  const last = p[p.length - 1];
  const kind =
    last === 'options'
      ? 'options'
      : last === 'seeds'
        ? 'seeds'
        : typeof last === 'number' && p[p.length - 2] === 'approaches'
          ? 'approach'
          : '';
  const field = fieldPath([...p, keys[0]]);
  const known = KNOWN_FIELDS[kind] ?? [];
  const what = kind === 'options' ? 'option' : 'field';
  return `${field}: unknown ${what}${known.length ? `; known: ${known.join(', ')}` : ''}`;
}

/** One line for the first problem zod found. */
function zodMessage(error: z.ZodError): string {
  const { issue, path: p } = deepest(error.issues[0], []);
  if (issue.code === 'unrecognized_keys') return unknownKeyMessage(p, issue.keys);
  const where = fieldPath(p);
  return where ? `${where}: ${describe(issue)}` : describe(issue);
}

// --- checking and normalising ---

const asList = (v: ParamValue | ParamValue[]): ParamValue[] => (Array.isArray(v) ? v : [v]);

function checkValues(spec: ParamSpec, given: ParamValue | ParamValue[], where: string, owner?: string): ParamValue[] {
  const list = asList(given);
  if (!list.length) throw new GridFileError(`${where}: must list at least one value`);
  list.forEach((v, i) => {
    if (invalidReason(spec, v) !== undefined) {
      const at = Array.isArray(given) ? `${where}[${i}]` : where;
      throw new GridFileError(
        `${at}: must be ${acceptedValues(spec)}${owner ? ` (parameter of ${owner})` : ''}, got ${show(v)}`,
      );
    }
  });
  return list;
}

function checkBlock(b: GridBlockInput, at: string): GridBlock {
  const approaches: GridApproach[] = b.approaches.map((a, i) => {
    const entry = typeof a === 'string' ? { id: a } : a;
    const where = `${at}approaches[${i}]`;
    const info = APPROACH_INFO[entry.id];
    if (!info)
      throw new GridFileError(
        `${typeof a === 'string' ? where : `${where}.id`}: unknown approach ${show(entry.id)}; choose one of ${APPROACH_IDS.join(', ')}`,
      );
    const parameters: Record<string, ParamValue[]> = {};
    for (const [k, v] of Object.entries(entry.parameters ?? {})) {
      const spec = info.params[k];
      const field = `${where}.parameters.${k}`;
      if (!spec) {
        const known = Object.keys(info.params);
        throw new GridFileError(
          `${field}: ${entry.id} has no parameter '${k}'${known.length ? `; its parameters: ${known.join(', ')}` : ' (it takes none)'}`,
        );
      }
      parameters[k] = checkValues(spec, v, field);
    }
    return { id: entry.id, parameters, ...(entry.tag ? { tag: entry.tag } : {}) };
  });
  const shared: Record<string, ParamValue[]> = {};
  for (const [k, v] of Object.entries(b.parameters ?? {})) {
    const field = `${at}parameters.${k}`;
    const owners = approaches.filter((a) => APPROACH_INFO[a.id].params[k]);
    if (!owners.length) throw new GridFileError(`${field}: no approach of this grid has a parameter '${k}'`);
    for (const o of owners) checkValues(APPROACH_INFO[o.id].params[k], v, field, o.id);
    shared[k] = asList(v);
  }
  const options: GridOptions = { ...b.options };
  if (options.datasets && b.experiments.some((e) => e !== 'mixture'))
    throw new GridFileError(
      `${at}options.datasets: only the mixture experiment takes datasets (experiments: ${b.experiments.join(', ')})`,
    );
  const seeds = Array.isArray(b.seeds)
    ? [...new Set(b.seeds)]
    : Array.from({ length: b.seeds.to - b.seeds.from + 1 }, (_, i) => (b.seeds as { from: number }).from + i);
  return { experiments: [...new Set(b.experiments)], approaches, seeds, options, parameters: shared };
}

/**
 * A grid checked and normalised; `source` names it in messages (the file name). Throws GridFileError with
 * one line "SOURCE: FIELD: problem".
 */
export function checkGrid(input: unknown, source: string): GridFile {
  const parsed = fileInput.safeParse(input, { reportInput: true });
  if (!parsed.success) throw new GridFileError(`${source}: ${zodMessage(parsed.error)}`);
  const g = parsed.data;
  try {
    if ('grids' in g) return { name: g.name, grids: g.grids.map((b, i) => checkBlock(b, `grids[${i}].`)) };
    return { name: g.name, grids: [checkBlock(g, '')] };
  } catch (e) {
    if (e instanceof GridFileError) throw new GridFileError(`${source}: ${e.message}`);
    throw e;
  }
}

/** Parses YAML or JSON text (JSON when the name ends in .json). */
export function parseGridText(text: string, source: string): GridFile {
  let data: unknown;
  try {
    data = source.toLowerCase().endsWith('.json') ? JSON.parse(text) : YAML.parse(text, { prettyErrors: true });
  } catch (e) {
    const first = (e as Error).message.split('\n')[0];
    throw new GridFileError(`${source}: not valid ${source.endsWith('.json') ? 'JSON' : 'YAML'}: ${first}`);
  }
  return checkGrid(data, source);
}

/** Reads and checks a grid file. */
export function readGridFile(file: string): GridFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new GridFileError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parseGridText(text, file);
}

/** A grid as YAML text (a protocol written out as a grid file one can edit). */
export function gridToYaml(grid: GridFile): string {
  const block = (b: GridBlock) => ({
    experiments: b.experiments,
    approaches: b.approaches.map((a) =>
      Object.keys(a.parameters).length || a.tag
        ? {
            id: a.id,
            ...(Object.keys(a.parameters).length
              ? {
                  parameters: Object.fromEntries(
                    Object.entries(a.parameters).map(([k, v]) => [k, v.length === 1 ? v[0] : v]),
                  ),
                }
              : {}),
            ...(a.tag ? { tag: a.tag } : {}),
          }
        : a.id,
    ),
    seeds: b.seeds,
    ...(Object.keys(b.options).length ? { options: b.options } : {}),
    ...(Object.keys(b.parameters).length ? { parameters: b.parameters } : {}),
  });
  const doc =
    grid.grids.length === 1
      ? { name: grid.name, ...block(grid.grids[0]) }
      : { name: grid.name, grids: grid.grids.map(block) };
  const yaml = new YAML.Document(doc);
  // lists of plain values on one line: [0, 1, 2]
  YAML.visit(yaml, {
    Seq(_, node) {
      if (node.items.every((i) => YAML.isScalar(i))) node.flow = true;
    },
  });
  return yaml.toString({ lineWidth: 118, flowCollectionPadding: false });
}

/** The file name without folder and extension (a default plan name). */
export const gridBaseName = (file: string): string => path.basename(file).replace(/\.(ya?ml|json)$/i, '');

/**
 * Typed parameter schemas. An approach declares each parameter once (type, default, accepted range, help,
 * the spec's search grid); its constructor defaults, `-p name=value` parsing, `hat run --help`, grid files and
 * the parameters recorded in result files all derive from that declaration.
 */
import { OptionError } from './errors';

export type ParamValue = number | string | boolean;
export type Hyper = Record<string, ParamValue>;

export interface NumberParam {
  type: 'number';
  default: number;
  help: string;
  /** Smallest accepted value (inclusive unless `exclusiveMin`). */
  min?: number;
  exclusiveMin?: boolean;
  max?: number;
  integer?: boolean;
  /** Values of the spec's search grid. */
  grid?: readonly number[];
}
export interface BooleanParam {
  type: 'boolean';
  default: boolean;
  help: string;
}
export interface ChoiceParam<V extends string = string> {
  type: 'choice';
  default: V;
  values: readonly V[];
  help: string;
}
export type ParamSpec = NumberParam | BooleanParam | ChoiceParam;
export type ParamSchema = Readonly<Record<string, ParamSpec>>;

/** The value types a schema describes: `{ smax: number; schedule: string; ... }`. */
export type ParamValues<S extends ParamSchema> = {
  -readonly [K in keyof S]: S[K] extends NumberParam
    ? number
    : S[K] extends BooleanParam
      ? boolean
      : S[K] extends ChoiceParam<infer V>
        ? V
        : never;
};

export const numberParam = (
  value: number,
  help: string,
  range: Omit<NumberParam, 'type' | 'default' | 'help'> = {},
): NumberParam => ({
  type: 'number',
  default: value,
  help,
  ...range,
});
export const booleanParam = (value: boolean, help: string): BooleanParam => ({ type: 'boolean', default: value, help });
export const choiceParam = <const V extends string>(
  value: NoInferString<V>,
  values: readonly V[],
  help: string,
): ChoiceParam<V> => ({
  type: 'choice',
  default: value,
  values,
  help,
});
type NoInferString<V extends string> = V & {};

/** The accepted values of a parameter, in words ("a number > 0", "true or false", "code or paper"). */
export function acceptedValues(p: ParamSpec): string {
  if (p.type === 'boolean') return 'true or false';
  if (p.type === 'choice') return p.values.join(' or ');
  const kind = p.integer ? 'an integer' : 'a number';
  const bounds: string[] = [];
  if (p.min !== undefined) bounds.push(`${p.exclusiveMin ? '>' : '>='} ${p.min}`);
  if (p.max !== undefined) bounds.push(`<= ${p.max}`);
  return bounds.length ? `${kind} ${bounds.join(' and ')}` : kind;
}

/** Why `value` is not acceptable for `p`, or undefined when it is. */
export function invalidReason(p: ParamSpec, value: unknown): string | undefined {
  if (p.type === 'boolean') return typeof value === 'boolean' ? undefined : 'not true or false';
  if (p.type === 'choice')
    return typeof value === 'string' && p.values.includes(value) ? undefined : 'not one of the choices';
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'not a finite number';
  if (p.integer && !Number.isInteger(value)) return 'not an integer';
  if (p.min !== undefined && (p.exclusiveMin ? value <= p.min : value < p.min)) return 'below the range';
  if (p.max !== undefined && value > p.max) return 'above the range';
  return undefined;
}

/** A parameter value checked against its declaration; `where` names it in the error ("parameter smax of hat"). */
export function checkParam(p: ParamSpec, value: unknown, where: string, shown = JSON.stringify(value)): ParamValue {
  if (invalidReason(p, value) !== undefined)
    throw new OptionError(`${where} must be ${acceptedValues(p)}, got ${shown}`);
  return value as ParamValue;
}

/** Every parameter of a schema: the given values (checked) over the defaults. Unknown names are refused. */
export function withDefaults<S extends ParamSchema>(
  schema: S,
  given: Partial<Record<string, unknown>>,
  owner: string,
): ParamValues<S> {
  const out: Hyper = {};
  for (const key of Object.keys(given)) {
    if (!(key in schema)) throw unknownParam(schema, key, owner);
  }
  for (const [key, p] of Object.entries(schema)) {
    const v = given[key];
    out[key] = v === undefined ? p.default : checkParam(p, v, `parameter ${key} of ${owner}`);
  }
  return out as ParamValues<S>;
}

function unknownParam(schema: ParamSchema, key: string, owner: string): OptionError {
  const known = Object.keys(schema);
  return new OptionError(
    `${owner} has no parameter '${key}'${known.length ? `; its parameters: ${known.join(', ')}` : ' (it takes none)'}`,
  );
}

/** Parses one text value ("400", "true", "paper") as the parameter's type. */
export function parseParamValue(p: ParamSpec, raw: string, where: string): ParamValue {
  const text = raw.trim();
  if (p.type === 'number') {
    return checkParam(p, text === '' ? NaN : Number(text), where, `'${raw}'`);
  }
  if (p.type === 'boolean') {
    if (text !== 'true' && text !== 'false') throw new OptionError(`${where} must be true or false, got '${raw}'`);
    return text === 'true';
  }
  return checkParam(p, text, where, `'${raw}'`);
}

/** Parses "k=v" items (also comma-separated) against a schema: every parameter, defaults for those not given. */
export function parseParams<S extends ParamSchema>(schema: S, items: readonly string[], owner: string): ParamValues<S> {
  const given: Hyper = {};
  for (const item of items
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq < 1) throw new OptionError(`-p/--parameter '${item}' is not of the form name=value`);
    const key = item.slice(0, eq);
    const p = schema[key];
    if (!p) throw unknownParam(schema, key, owner);
    given[key] = parseParamValue(p, item.slice(eq + 1), `parameter ${key} of ${owner} (-p ${key}=...)`);
  }
  return withDefaults(schema, given, owner);
}

/** The parameters whose value differs from the default, in declaration order. */
export function changedParams(schema: ParamSchema, values: Hyper): [string, ParamValue][] {
  return Object.entries(schema)
    .filter(([k, p]) => values[k] !== undefined && values[k] !== p.default)
    .map(([k]) => [k, values[k]]);
}

/** One help line per parameter: "name=default  help (accepted values; grid ...)". */
export function paramHelp(schema: ParamSchema, indent: string): string[] {
  return Object.entries(schema).map(([k, p]) => {
    const extra = [acceptedValues(p), p.type === 'number' && p.grid ? `spec grid ${p.grid.join(', ')}` : '']
      .filter(Boolean)
      .join('; ');
    return `${indent}${`${k}=${String(p.default)}`.padEnd(22)} ${p.help} (${extra})`;
  });
}

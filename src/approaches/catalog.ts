/**
 * What every approach is, as data (no TensorFlow): id, label, help, network variant, parameters (with the
 * spec's defaults, ranges and grids), and its role. The registry (./index.ts) adds the constructors; tables,
 * figures and help texts read this module only, so they load without TensorFlow.
 */
import {
  type Hyper,
  type ParamSchema,
  type ParamValue,
  booleanParam,
  changedParams,
  choiceParam,
  numberParam,
} from '../core/params';

/**
 * Which network an approach starts from (spec §3): HAT's gated variant, the baselines' plain one, LFL's
 * (no dropout on the last hidden layer), or none (`random`). PathNet and PNN derive their modules and
 * columns from the plain one.
 */
export type NetworkVariant = 'hat' | 'baseline' | 'lfl' | 'none';

export interface ApproachInfo {
  id: string;
  /** Name in tables and figures (the paper's label). */
  label: string;
  help: string;
  network: NetworkVariant;
  params: ParamSchema;
}

const clipNorm = (value: number) =>
  numberParam(value, 'gradient clipping: max global L2 norm (spec §5 per approach)', { min: 0, exclusiveMin: true });
const strength = (value: number, help: string, grid: number[]) => numberParam(value, help, { min: 0, grid });

export const HAT_PARAMS = {
  smax: numberParam(400, 'stability: largest gate scale s', {
    min: 0,
    exclusiveMin: true,
    grid: [25, 50, 100, 200, 400, 800],
  }),
  c: numberParam(0.75, 'compressibility: weight of the capacity regulariser', {
    min: 0,
    grid: [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 4],
  }),
  schedule: choiceParam(
    'code',
    ['code', 'paper'],
    's annealing within an epoch: code (by sample index, reference) or paper (by batch index)',
  ),
  embeddingInit: choiceParam(
    'normal',
    ['normal', 'uniform'],
    'task embeddings: N(0,1) (HAT) or U(0,2) (compression and logging variant, spec §9)',
  ),
  evalScale: numberParam(
    1,
    'gate scale at validation and test as a multiple of smax (10000: step gates, compression variant spec §9)',
    {
      min: 1,
    },
  ),
  clipNorm: clipNorm(10000),
} as const satisfies ParamSchema;

export const SGD_PARAMS = { clipNorm: clipNorm(10000) } as const satisfies ParamSchema;

export const LWF_PARAMS = {
  lambda: strength(2, 'weight of the distillation terms', [0.1, 0.5, 1, 2, 4, 8, 10]),
  T: numberParam(1, 'distillation temperature', { min: 0, exclusiveMin: true, grid: [0.5, 1, 2, 4] }),
  clipNorm: clipNorm(100),
} as const satisfies ParamSchema;

export const LFL_PARAMS = {
  lambda: strength(0.05, 'weight of the feature distance', [1e-1, 5e-2, 1e-2, 5e-3, 1e-3, 5e-4, 1e-4, 5e-5]),
  clipNorm: clipNorm(200),
} as const satisfies ParamSchema;

export const EWC_PARAMS = {
  lambda: strength(5000, 'weight of the EWC penalty', [500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4]),
  clipNorm: clipNorm(100),
} as const satisfies ParamSchema;

export const IMM_MEAN_PARAMS = {
  r: strength(1e-4, 'weight of the L2-transfer penalty', [1e-2, 5e-3, 1e-3, 5e-4, 1e-4, 5e-5, 1e-6]),
  clipNorm: clipNorm(10000),
} as const satisfies ParamSchema;

export const IMM_MODE_PARAMS = {
  lambda: strength(0.01, 'weight of the L2-transfer penalty', [10, 1, 0.1, 1e-2, 1e-3, 1e-4, 1e-5]),
  merge: booleanParam(
    true,
    "apply the Fisher-weighted merge (the paper's method); false = the reference code, whose merge never changes the weights (its published numbers)",
  ),
  clipNorm: clipNorm(1000),
} as const satisfies ParamSchema;

const count = (value: number, help: string, grid?: number[]) =>
  numberParam(value, help, { min: 1, integer: true, grid });

export const PATHNET_PARAMS = {
  generations: count(
    20,
    'generations per task (epochs per path per generation = nepochs/generations)',
    [5, 10, 20, 50, 100, 200],
  ),
  paths: count(2, 'candidate paths P'),
  modules: count(16, 'modules per layer M'),
  active: count(3, 'modules per layer on a path N (at most M)'),
  widthFactor: numberParam(
    0.258,
    "module width as a fraction of the base layer (0.258 matches the AlexNet's parameters)",
    {
      min: 0,
      exclusiveMin: true,
    },
  ),
  clipNorm: clipNorm(1000),
} as const satisfies ParamSchema;

export const PROGRESSIVE_PARAMS = {
  widthFactor: numberParam(
    1.117,
    "column width = widthFactor x base width / tasks (1.117 matches the AlexNet's parameters)",
    {
      min: 0,
      exclusiveMin: true,
    },
  ),
  fullRecursion: booleanParam(
    false,
    'laterals read earlier columns computed with their own laterals; false = as plain columns (reference)',
  ),
  headLateral: booleanParam(
    true,
    'add the lateral into the head (spec); false = the reference, whose head adapters never reach the loss',
  ),
  clipNorm: clipNorm(10000),
} as const satisfies ParamSchema;

const info = (id: string, label: string, network: NetworkVariant, params: ParamSchema, help: string): ApproachInfo => ({
  id,
  label,
  network,
  params,
  help,
});

/** Every approach, in the order of `hat run --help`. */
export const APPROACH_INFO: Readonly<Record<string, ApproachInfo>> = {
  hat: info('hat', 'HAT', 'hat', HAT_PARAMS, "hard attention to the task (the paper's method)"),
  sgd: info('sgd', 'SGD', 'baseline', SGD_PARAMS, 'keep training the same network on each task'),
  'sgd-frozen': info('sgd-frozen', 'SGD-F', 'baseline', SGD_PARAMS, 'train all on the first task, then only the heads'),
  'sgd-restart': info('sgd-restart', 'SGD-R', 'baseline', SGD_PARAMS, 'reset to the initial weights before every task'),
  lwf: info(
    'lwf',
    'LWF',
    'baseline',
    LWF_PARAMS,
    "learning without forgetting: distil the old model's outputs on earlier heads",
  ),
  lfl: info(
    'lfl',
    'LFL',
    'lfl',
    LFL_PARAMS,
    "less-forgetting learning: keep the last hidden layer close to the old model's",
  ),
  ewc: info(
    'ewc',
    'EWC',
    'baseline',
    EWC_PARAMS,
    'elastic weight consolidation: Fisher-weighted pull towards the previous weights',
  ),
  'imm-mean': info(
    'imm-mean',
    'IMM-MEAN',
    'baseline',
    IMM_MEAN_PARAMS,
    'incremental moment matching, mean: L2-transfer, then average with the previous weights',
  ),
  'imm-mode': info(
    'imm-mode',
    'IMM-MODE',
    'baseline',
    IMM_MODE_PARAMS,
    'incremental moment matching, mode: L2-transfer, then Fisher-weighted merge with the previous weights',
  ),
  pathnet: info(
    'pathnet',
    'PATHNET',
    'baseline',
    PATHNET_PARAMS,
    "PathNet: evolve paths through modular layers, freeze each task's best path",
  ),
  progressive: info(
    'progressive',
    'PNN',
    'baseline',
    PROGRESSIVE_PARAMS,
    'progressive networks: a new column per task with lateral adapters, earlier columns frozen',
  ),
  joint: info(
    'joint',
    'Joint',
    'baseline',
    SGD_PARAMS,
    'multitask reference: retrain from scratch on all tasks so far (needed by the forgetting ratio)',
  ),
  random: info('random', 'Random', 'none', {}, 'stratified random guessing (needed by the forgetting ratio)'),
};

export const APPROACH_IDS = Object.keys(APPROACH_INFO);

/** The paper's Table 1 approaches, from the worst rho<=8 to the best (spec §8.1). */
export const TABLE1 = [
  'lfl',
  'lwf',
  'sgd',
  'imm-mode',
  'sgd-frozen',
  'imm-mean',
  'ewc',
  'pathnet',
  'progressive',
  'hat',
] as const;

/** The references of the forgetting ratio (spec §7): random guessing and joint training. */
export const REFERENCES = ['random', 'joint'] as const;
export type ReferenceKind = (typeof REFERENCES)[number];

/** Everything a Table 1 run set needs, references first (every later result then gets its ratios). */
export const TABLE1_RUNS: readonly string[] = [...REFERENCES, ...TABLE1];

/**
 * Approaches whose reference code differs from the paper's method (README "Choices"): the parameter values that
 * reproduce the reference code (its published numbers), and the tag its runs get. The defaults above are the
 * paper's methods.
 */
export const REFERENCE_CODE: Readonly<Record<string, { parameters: Record<string, ParamValue>; tag: string }>> = {
  'imm-mode': { parameters: { merge: false }, tag: 'imm-mode-ref' },
  progressive: { parameters: { headLateral: false }, tag: 'progressive-ref' },
};

/** For an approach of REFERENCE_CODE: whether these parameters are the reference code's or the paper's method. */
export function variantOf(approach: string, parameters: Record<string, ParamValue>): 'reference' | 'paper' | undefined {
  const v = REFERENCE_CODE[approach];
  if (!v) return undefined;
  return Object.entries(v.parameters).every(([k, value]) => parameters[k] === value) ? 'reference' : 'paper';
}

/** Which reference an approach is (by id, whatever its tag), or undefined for a method. */
export function referenceKind(approach: string): ReferenceKind | undefined {
  return (REFERENCES as readonly string[]).includes(approach) ? (approach as ReferenceKind) : undefined;
}

/** Is a run of this approach (whatever its tag) one of the forgetting ratio's references? The one place that decides it. */
export function isReference(approach: string): boolean {
  return referenceKind(approach) !== undefined;
}

export function approachInfo(id: string): ApproachInfo | undefined {
  return APPROACH_INFO[id];
}

/** The default tag: approach id plus its non-default parameters ("hat-smax25-c0.1"). */
export function defaultTag(approach: string, params: Hyper): string {
  return [approach, ...changedParams(APPROACH_INFO[approach].params, params).map(([k, v]) => `${k}${String(v)}`)].join(
    '-',
  );
}

/**
 * The paper's protocols as grids (data only; ./expand.ts applies a scale and a method): which experiments,
 * approaches, parameters and seeds each result of the paper needs at the spec's scale, and what the smaller
 * scales cut. No TensorFlow.
 */
import { HAT_PARAMS, REFERENCE_CODE, REFERENCES, TABLE1 } from '../approaches/catalog';
import type { GridApproachInput, GridBlockInput, GridOptions } from './schema';

export const PROTOCOLS = ['table1', 'robustness', 'usage', 'compression', 'pmnist', 'mnist2', 'cifar'] as const;
export type ProtocolName = (typeof PROTOCOLS)[number];
/** `--protocol all`: every protocol, the quick ones first so that every figure has results early. */
export const ALL_PROTOCOLS: readonly ProtocolName[] = [
  'usage',
  'compression',
  'robustness',
  'table1',
  'pmnist',
  'mnist2',
  'cifar',
];

export const SCALES = ['paper', 'lite', 'smoke'] as const;
export type Scale = (typeof SCALES)[number];

/**
 * reference: IMM-mode and PNN as the reference code runs them (its published numbers); paper: those two
 * also as the paper describes them.
 */
export const METHODS = ['reference', 'paper'] as const;
export type Method = (typeof METHODS)[number];

/** Table 1's runs (spec §8.1): the references, then the paper's list with the reference code's variants. */
const TABLE_APPROACHES: GridApproachInput[] = [
  ...REFERENCES,
  ...TABLE1.map((id) => {
    const v = REFERENCE_CODE[id];
    return v ? { id, parameters: v.parameters, tag: v.tag } : id;
  }),
];

/** What `--method paper` adds to the blocks of the Table 1 protocols: the paper's own variants (catalog defaults). */
export const PAPER_METHOD_APPROACHES: readonly string[] = Object.keys(REFERENCE_CODE);

const SEEDS_0_9 = { from: 0, to: 9 };

/** Fig. 4's grid: the spec's search grid of smax and c (their schemas in the catalog). */
export const ROBUSTNESS_GRID = { smax: [...(HAT_PARAMS.smax.grid ?? [])], c: [...(HAT_PARAMS.c.grid ?? [])] };

/** Spec §6.3: a compression run per mixture dataset, with the seed whose sequence starts with it. */
export const COMPRESSION_SEEDS: Readonly<Record<string, number>> = {
  facescrub: 0,
  notmnist: 1,
  'fashion-mnist': 2,
  'traffic-signs': 3,
  cifar10: 6,
  mnist: 10,
  cifar100: 13,
  svhn: 25,
};

export interface ProtocolDef {
  title: string;
  /** Its blocks at the paper's scale (the spec's protocol exactly). */
  grids: GridBlockInput[];
  /** `--method paper` adds PAPER_METHOD_APPROACHES to these blocks. */
  methodVariants?: boolean;
}

const tableProtocol = (experiment: 'mixture' | 'cifar' | 'pmnist' | 'mnist2', title: string): ProtocolDef => ({
  title,
  grids: [{ experiments: [experiment], approaches: TABLE_APPROACHES, seeds: SEEDS_0_9 }],
  methodVariants: true,
});

export const PROTOCOL_DEFS: Readonly<Record<ProtocolName, ProtocolDef>> = {
  table1: tableProtocol('mixture', 'Table 1 and Fig. 3: every approach on the mixture, seeds 0-9 (spec §8.1-8.2)'),
  robustness: {
    title: 'Fig. 4: HAT over smax x c on the mixture, seed 0, with its references (spec §8.4)',
    grids: [
      {
        experiments: ['mixture'],
        approaches: [...REFERENCES, { id: 'hat', parameters: ROBUSTNESS_GRID }],
        seeds: [0],
      },
    ],
  },
  usage: {
    title: "Figs. 5-6: HAT's per-epoch gate log on the mixture, seed 0 (spec §8.5-8.6, §9)",
    grids: [
      {
        experiments: ['mixture'],
        approaches: [{ id: 'hat', parameters: { embeddingInit: 'uniform' } }],
        seeds: [0],
        options: { monitor: ['gates'] },
      },
    ],
  },
  compression: {
    title:
      'Fig. 7: single-task HAT (c 1.5, U(0,2) embeddings, step gates) and plain SGD per mixture dataset (spec §8.7)',
    grids: Object.entries(COMPRESSION_SEEDS).map(([dataset, seed]) => ({
      experiments: ['mixture'],
      approaches: [{ id: 'hat', parameters: { c: 1.5, embeddingInit: 'uniform', evalScale: 10000 } }, 'sgd'],
      seeds: [seed],
      options: { tasks: 1, datasets: [dataset], monitor: ['compression'] },
    })),
  },
  pmnist: tableProtocol('pmnist', 'Permuted MNIST, 10 tasks: HAT and every Table 1 approach, seeds 0-9 (spec §8.3)'),
  mnist2: tableProtocol('mnist2', 'Split MNIST, 2 tasks: HAT and every Table 1 approach, seeds 0-9 (spec §8.3)'),
  cifar: tableProtocol('cifar', 'CIFAR-10/100, 10 tasks: HAT and every Table 1 approach, seeds 0-9 (spec §8.3)'),
};

/** What a scale cuts from the paper's protocol. */
export interface ScaleCut {
  /** Caps on every run (a block's own smaller value stays): epochs, tasks, samples. */
  caps: Pick<GridOptions, 'nepochs' | 'tasks' | 'maxTrain' | 'maxTest'>;
  /** MLP widths for the MNIST experiments (unless a block sets them). */
  mlpHidden?: number[];
  /** Keep the first n seeds of every block. */
  seeds?: number;
  /** robustness: the smax and c values of the grid. */
  robustness?: { smax: number[]; c: number[] };
  /** compression: only these datasets. */
  compressionDatasets?: string[];
  /** A protocol's own caps and seeds (over the scale's), e.g. the fast MLP setups can afford more samples. */
  protocols?: Partial<Record<ProtocolName, { caps?: ScaleCut['caps']; seeds?: number }>>;
}

/**
 * Lite: every protocol on this machine (2 cores, no GPU, the 5 datasets of the offline mirror) with 2 workers of
 * 1 thread, in about six hours: 10 thread hours on an otherwise idle machine by `hat results`' estimate, 15.8 as
 * measured on a shared one (res/reference/lite/README.md).
 * Epochs are cut before samples, as HAT anneals s within every epoch: 3,000 training images per task (47
 * batches per epoch) for at most 15 epochs. Measured on the mixture's first tasks at this scale and seed 0: see
 * res/reference/lite/README.md. The MLP setups are cheap enough for more samples per task, on 5 tasks.
 */
export const LITE: ScaleCut = {
  caps: { nepochs: 15, maxTrain: 3000, maxTest: 2000 },
  seeds: 3,
  robustness: { smax: [25, 100, 400], c: [0.1, 0.75, 2.5] },
  protocols: {
    pmnist: { caps: { tasks: 5, maxTrain: 4000, nepochs: 10 } },
    mnist2: { caps: { maxTrain: 10000, nepochs: 10 } },
  },
};

export const SMOKE: ScaleCut = {
  caps: { nepochs: 1, tasks: 2, maxTrain: 200, maxTest: 100 },
  mlpHidden: [16],
  seeds: 1,
  robustness: { smax: [25, 400], c: [0.1, 0.75] },
  compressionDatasets: ['mnist', 'notmnist'],
};

export const SCALE_CUTS: Readonly<Record<Scale, ScaleCut>> = {
  paper: { caps: {} },
  lite: LITE,
  smoke: SMOKE,
};

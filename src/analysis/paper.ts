/**
 * The paper's published numbers, in one place (spec §8): tables and figures show ours beside them.
 */

export interface PaperTable1Row {
  /** Approach id (approaches/catalog.ts). */
  approach: string;
  /** rho^{<=2} and rho^{<=8}: mean and standard deviation over seeds 0-9. */
  rho2: [number, number];
  rho8: [number, number];
}

/** Table 1: mixture, mean (std) over seeds 0-9, rows sorted by rho^{<=8} (worst first). */
export const PAPER_TABLE1: readonly PaperTable1Row[] = [
  { approach: 'lfl', rho2: [-0.73, 0.29], rho8: [-0.92, 0.08] },
  { approach: 'lwf', rho2: [-0.14, 0.13], rho8: [-0.8, 0.06] },
  { approach: 'sgd', rho2: [-0.2, 0.08], rho8: [-0.66, 0.03] },
  { approach: 'imm-mode', rho2: [-0.11, 0.08], rho8: [-0.49, 0.05] },
  { approach: 'sgd-frozen', rho2: [-0.2, 0.15], rho8: [-0.44, 0.06] },
  { approach: 'imm-mean', rho2: [-0.12, 0.1], rho8: [-0.42, 0.04] },
  { approach: 'ewc', rho2: [-0.08, 0.06], rho8: [-0.25, 0.03] },
  { approach: 'pathnet', rho2: [-0.09, 0.16], rho8: [-0.17, 0.23] },
  { approach: 'progressive', rho2: [-0.11, 0.1], rho8: [-0.11, 0.01] },
  { approach: 'hat', rho2: [-0.02, 0.03], rho8: [-0.06, 0.01] },
];

/** Fig. 7: weights kept (%) by the final single-task models, where the paper states them (task names as in result files). */
export const PAPER_COMPRESSION: readonly { dataset: string; percent: number }[] = [
  { dataset: 'MNIST', percent: 1 },
  { dataset: 'CIFAR100', percent: 21 },
];

/** §4.2's other setups (spec §8.3): the final metric the paper quotes for an approach. */
export interface PaperSetupNumber {
  experiment: 'cifar' | 'pmnist' | 'mnist2';
  approach: string;
  /** rho: forgetting ratio rho^{<=T}; accuracy: average accuracy A^{<=T} (%). */
  metric: 'rho' | 'accuracy';
  tasks: number;
  value: number;
}

export const PAPER_SETUPS: readonly PaperSetupNumber[] = [
  { experiment: 'cifar', approach: 'hat', metric: 'rho', tasks: 10, value: -0.09 },
  { experiment: 'cifar', approach: 'ewc', metric: 'rho', tasks: 10, value: -0.18 },
  { experiment: 'pmnist', approach: 'hat', metric: 'accuracy', tasks: 10, value: 98.6 },
  { experiment: 'mnist2', approach: 'hat', metric: 'accuracy', tasks: 2, value: 99.0 },
];

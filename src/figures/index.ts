/**
 * The paper's figures and tables as data: typed rows from result files and Plotly figure specs
 * ({data, layout}). Pure functions, no display and no TensorFlow: the notebooks hand the specs to
 * src/notebook, tests check the numbers.
 *
 *   Fig. 2  gradientAnnealingCurves / gradientAnnealingFigure      mechanism.ts   (spec §8.8, analytic)
 *   Fig. 3  forgettingCurves / forgettingFigure                    forgetting.ts  (spec §8.2)
 *   Tab. 1  table1Rows (beside analysis/paper.ts)                  forgetting.ts  (spec §8.1)
 *   §4.2    setupRows: pmnist, mnist2, cifar beside the paper      forgetting.ts
 *   Fig. 4  hyperGrid / hyperGridFigure                            robustness.ts  (spec §8.4)
 *   Fig. 5  gateLogOf / capacityFigure, usagePerTaskRows           capacity.ts    (spec §8.5)
 *   Fig. 6  reuseMatrix / reuseFigure                              capacity.ts    (spec §8.6)
 *   Fig. 7  compressionSeries / compressionFigure, compressionRows compression.ts (spec §8.7)
 */
export * from './plotly';
export * from './families';
export * from './forgetting';
export * from './mechanism';
export * from './robustness';
export * from './capacity';
export * from './compression';
export { stat, tQuantile975 } from '../analysis/stats';
export type { Stat } from '../analysis/stats';

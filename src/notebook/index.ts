/**
 * What the tslab notebooks (notebooks/*.ipynb) share: finding the project and its results (./project.ts),
 * data frames (./frames.ts), showing tables and interactive Plotly figures (./display.ts), and small live
 * experiments when the results a notebook needs are missing (./fallbacks.ts). Figures themselves are
 * src/figures.
 */
export * from './display';
export * from './frames';
export * from './project';
export * from './fallbacks';

/**
 * What the tslab notebooks (notebooks/*.ipynb) share: finding the project and its results, the user's own or
 * the committed lite reproduction (./project.ts), data frames (./frames.ts), and showing tables and
 * interactive Plotly figures (./display.ts). Figures themselves are src/figures.
 */
export * from './display';
export * from './frames';
export * from './project';

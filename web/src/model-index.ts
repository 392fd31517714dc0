/**
 * What `web/public/models/` holds (written by scripts/web-example.ts, read by the page): `index.json` lists the
 * exported task models (each a `hat export` folder: model.json + weights.bin) and the model they came from;
 * `samples.json` has one MNIST test image per digit, for trying the page without drawing. Types only: the
 * script (Node) and the page (browser) share them.
 */

export const INDEX_FORMAT = 'hat-ts/web-models@1';

/** One exported task: a plain TensorFlow.js layers model (tf.loadLayersModel). */
export interface WebModelEntry {
  /** Folder name under models/, e.g. `mnist2-task1`. */
  name: string;
  /** model.json, relative to index.json. */
  path: string;
  /** The task's name (as the model knows it, e.g. `MNIST 0-4`) and its classes' names. */
  task: string;
  classNames: string[];
  /** Per gated layer: units kept of all (gate above the export's threshold). */
  units: { layer: string; kept: number; of: number }[];
  /** Weights and biases of the export, and of the trunk plus this task's head. */
  parameters: { exported: number; trunkAndHead: number };
  /** Bytes of model.json + weights.bin. */
  bytes: number;
  /** `hat export`'s check on the task's test images: accuracy of the export and of the model, largest probability difference. */
  accuracy: { samples: number; exported: number; model: number; maxDiff: number };
}

export interface WebModelIndex {
  format: typeof INDEX_FORMAT;
  created: string;
  /** The command that writes this folder again. */
  command: string;
  /** What was trained: experiment, approach and its parameters, seed, network, data and epochs. */
  source: {
    experiment: string;
    approach: string;
    parameters: Record<string, unknown>;
    seed: number;
    hidden: number[];
    maxTrain: number;
    nepochs: number;
    backend: string;
    /** The run's accuracy matrix (test accuracy of task u after learning task t, on its test subset). */
    accuracy: number[][];
  };
  models: WebModelEntry[];
}

/** One stored MNIST image (28x28 grey bytes, base64), and its digit. */
export interface WebSample {
  label: number;
  /** Its row in the MNIST test set. */
  index: number;
  pixels: string;
}

export interface WebSamples {
  source: string;
  shape: [number, number, number];
  samples: WebSample[];
}

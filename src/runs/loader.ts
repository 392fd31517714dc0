/**
 * Finding and reading result files: the one loader behind `hat table`, `hat results` and the notebooks.
 * Forgetting ratios are attached from the random and joint references of the same protocol found beside a
 * result (spec §7). No TensorFlow.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { referenceKind } from '../approaches/catalog';
import { forgettingRatios, meanUpTo } from '../analysis/metrics';
import { type RunResult, checkFormat, protocolKey } from './result-file';

export interface LoadedResult {
  file: string;
  result: RunResult;
}

export interface LoadOptions {
  /** Walk sub-folders too (up to `depth` levels; default 0 = this folder only). */
  depth?: number;
  /** Folder names not to enter (e.g. report, notebook-runs). */
  skip?: readonly string[];
  /** Keep unfinished (running) results too. */
  includeIncomplete?: boolean;
  /** Problems with individual files (unreadable, another format version) are reported here instead of thrown. */
  onProblem?: (file: string, message: string) => void;
}

/** Result files under a folder; files that are not result files (checkpoints, other JSON) are ignored. */
export function loadResults(dir: string, opts: LoadOptions = {}): LoadedResult[] {
  const out: LoadedResult[] = [];
  const walk = (d: string, depth: number) => {
    if (!fs.existsSync(d)) return;
    for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) {
        if (depth < (opts.depth ?? 0) && !(opts.skip ?? []).includes(entry.name)) walk(p, depth + 1);
        continue;
      }
      if (!entry.name.endsWith('.json') || entry.name.endsWith('.ckpt.json')) continue;
      let json: { format?: unknown; status?: unknown };
      try {
        json = JSON.parse(fs.readFileSync(p, 'utf8')) as typeof json;
      } catch {
        continue; // not JSON, or being written by another process
      }
      if (typeof json.format !== 'string' || !json.format.startsWith('hat-ts/run@')) continue;
      try {
        checkFormat(json, p);
      } catch (e) {
        opts.onProblem?.(p, (e as Error).message);
        continue;
      }
      if (json.status === 'complete' || opts.includeIncomplete)
        out.push({ file: p, result: json as unknown as RunResult });
    }
  };
  walk(dir, 0);
  return out;
}

/**
 * The reference runs of a result's protocol among `candidates` (same experiment, seed, tasks, training
 * options and data caps). A reference with a custom tag counts; the untagged one is preferred.
 */
export function findReferences(
  candidates: readonly LoadedResult[],
  result: RunResult,
): { random?: LoadedResult; joint?: LoadedResult } {
  const key = protocolKey(result.config.protocol);
  const same = candidates
    .filter((c) => c.result.status === 'complete' && protocolKey(c.result.config.protocol) === key)
    .sort(
      (a, b) =>
        Number(b.result.config.tag === b.result.config.approach) -
          Number(a.result.config.tag === a.result.config.approach) ||
        a.result.config.tag.localeCompare(b.result.config.tag),
    );
  return {
    random: same.find((c) => referenceKind(c.result.config.approach) === 'random'),
    joint: same.find((c) => referenceKind(c.result.config.approach) === 'joint'),
  };
}

/** Adds the forgetting ratios when both references are among `candidates` (a reference run is its own). */
export function attachForgetting(result: RunResult, candidates: readonly LoadedResult[]): boolean {
  const refs = findReferences(candidates, result);
  const kind = referenceKind(result.config.approach);
  const random = kind === 'random' ? result : refs.random?.result;
  const joint = kind === 'joint' ? result : refs.joint?.result;
  if (!random || !joint) return false;
  const ratios = forgettingRatios(
    result.accuracy,
    random.accuracy.map((row, u) => row[u]),
    joint.accuracy,
  );
  const name = (r: LoadedResult | undefined) => (r ? r.file : '(this run)');
  result.forgetting = {
    ratios,
    meanUpTo: meanUpTo(ratios),
    references: {
      random: kind === 'random' ? '(this run)' : name(refs.random),
      joint: kind === 'joint' ? '(this run)' : name(refs.joint),
    },
  };
  return true;
}

/**
 * Complete results under a folder with their forgetting ratios, each from the references in its own folder
 * (the same as `hat table` and the notebooks show).
 */
export function loadRuns(dir: string, opts: LoadOptions = {}): RunResult[] {
  const loaded = loadResults(dir, opts);
  const byFolder = new Map<string, LoadedResult[]>();
  for (const l of loaded) byFolder.set(path.dirname(l.file), [...(byFolder.get(path.dirname(l.file)) ?? []), l]);
  for (const l of loaded) attachForgetting(l.result, byFolder.get(path.dirname(l.file)) ?? []);
  return loaded.map((l) => l.result);
}

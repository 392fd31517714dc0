/**
 * Resume-safe downloads: bytes go to `FILE.part` (with `FILE.part.json` remembering the URL and the
 * server's ETag/Last-Modified), an interrupted transfer continues with an HTTP Range request, and only a
 * complete file whose checksum matches is renamed to FILE. A partial file is therefore never taken for a
 * complete one. Node's built-in fetch; progress on a bar (TTY) or as plain lines.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import cliProgress from 'cli-progress';
import { DataFileError } from './idx';

export interface Checksums {
  sha256: string;
  md5: string;
  bytes: number;
}

/** sha256 and md5 of a file, streamed. */
export async function hashFile(file: string): Promise<Checksums> {
  const sha = crypto.createHash('sha256');
  const md5 = crypto.createHash('md5');
  let bytes = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    sha.update(chunk as Buffer);
    md5.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('hex'), bytes };
}

/** Progress of downloads and conversions. */
export interface TransferProgress {
  start(label: string, total?: number): void;
  update(done: number): void;
  finish(message?: string): void;
  log(message: string): void;
}

export type TransferMode = 'auto' | 'bar' | 'lines' | 'quiet';

const mb = (n: number): string => (n / 1048576).toFixed(1);

export function createTransferProgress(
  mode: TransferMode = 'auto',
  stream: NodeJS.WriteStream = process.stderr,
): TransferProgress {
  const resolved = mode === 'auto' ? (stream.isTTY && !process.env.CI ? 'bar' : 'lines') : mode;
  if (resolved === 'bar') {
    let bar: cliProgress.SingleBar | undefined;
    return {
      start(label, total) {
        bar?.stop();
        bar = new cliProgress.SingleBar(
          {
            stream,
            hideCursor: true,
            format: `${label} {bar} {percentage}% | {doneMb}/{totalMb} MB | ETA {eta_formatted}`,
            etaBuffer: 40,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total ?? 0, 0, { doneMb: '0.0', totalMb: total ? mb(total) : '?' });
      },
      update(done) {
        bar?.update(done, { doneMb: mb(done) });
      },
      finish(message) {
        bar?.stop();
        bar = undefined;
        if (message) stream.write(message + '\n');
      },
      log(message) {
        stream.write(message + '\n');
      },
    };
  }
  const quiet = resolved === 'quiet';
  return {
    start(label, total) {
      if (!quiet) stream.write(`${label}${total ? ` (${mb(total)} MB)` : ''} ...\n`);
    },
    update() {},
    finish(message) {
      if (!quiet && message) stream.write(message + '\n');
    },
    log(message) {
      if (!quiet) stream.write(message + '\n');
    },
  };
}

export const silentProgress: TransferProgress = { start() {}, update() {}, finish() {}, log() {} };

export interface RemoteFile {
  /** File name in the downloads folder (the source's own name). */
  name: string;
  /** Mirrors, tried in order. */
  urls: string[];
  /** Published checksums (either), verified after download. */
  md5?: string;
  sha256?: string;
  /** Where the checksum comes from, e.g. "published on the CIFAR page". */
  checksumSource?: string;
  /** Expected size in bytes when known (shown in messages). */
  bytes?: number;
}

export interface DownloadResult extends Checksums {
  file: string;
  url: string;
  /** How the file was checked: 'md5 (published ...)', or 'none published: sha256 observed at first download'. */
  verification: string;
  resumed: boolean;
  /** The file was already there (verified again). */
  cached: boolean;
}

interface PartMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

function expected(remote: RemoteFile): string {
  const sums = [remote.sha256 && `sha256 ${remote.sha256}`, remote.md5 && `md5 ${remote.md5}`]
    .filter(Boolean)
    .join(', ');
  return `${remote.name}${remote.bytes ? ` (${remote.bytes} bytes${sums ? `, ${sums}` : ''})` : sums ? ` (${sums})` : ''}`;
}

function verify(remote: RemoteFile, sums: Checksums, file: string, dataset: string): string {
  const problems: string[] = [];
  if (remote.sha256 && remote.sha256.toLowerCase() !== sums.sha256)
    problems.push(`sha256 ${sums.sha256}, expected ${remote.sha256}`);
  if (remote.md5 && remote.md5.toLowerCase() !== sums.md5) problems.push(`md5 ${sums.md5}, expected ${remote.md5}`);
  if (problems.length) {
    throw new DataFileError(
      file,
      `checksum mismatch (${problems.join('; ')}; ${sums.bytes} bytes)`,
      `The file is corrupt or not the published one; it was deleted. Run the command again to download it anew, or download ${remote.urls[0]} yourself and pass it with \`hat data get ${dataset} --from PATH\`.`,
    );
  }
  const which = remote.sha256 ? 'sha256' : remote.md5 ? 'md5' : undefined;
  return which
    ? `${which} verified (${remote.checksumSource ?? 'published by the source'})`
    : 'none published by the source: sha256 observed at first download';
}

export class HttpError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

async function fetchOnce(url: string, part: string, progress: TransferProgress): Promise<{ resumed: boolean }> {
  const metaFile = `${part}.json`;
  let start = fs.existsSync(part) ? fs.statSync(part).size : 0;
  let meta: PartMeta | undefined;
  try {
    meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as PartMeta;
  } catch {
    meta = undefined;
  }
  if (start > 0 && meta?.url !== url) start = 0; // a partial file from another URL is not continued
  const headers: Record<string, string> = {};
  if (start > 0) {
    headers.Range = `bytes=${start}-`;
    const validator = meta?.etag && !meta.etag.startsWith('W/') ? meta.etag : meta?.lastModified;
    if (validator) headers['If-Range'] = validator;
  }
  let res = await fetch(url, { headers, redirect: 'follow' });
  let resumed = false;
  if (res.status === 416 && start > 0) {
    // nothing left to send: the partial file may be complete (its size equals the remote size)
    const total = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1]);
    await res.body?.cancel();
    if (total === start) return { resumed: true };
    start = 0;
    res = await fetch(url, { redirect: 'follow' });
  }
  if (res.status === 206) {
    const m = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== start) {
      await res.body?.cancel();
      start = 0;
      res = await fetch(url, { redirect: 'follow' });
    } else resumed = true;
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel();
    throw new HttpError(url, res.status, `HTTP ${res.status} ${res.statusText}`);
  }
  if (res.status === 200) start = 0;
  const length = Number(res.headers.get('content-length'));
  const rangeTotal = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1]);
  const total =
    res.status === 206
      ? Number.isFinite(rangeTotal)
        ? rangeTotal
        : undefined
      : Number.isFinite(length) && length > 0
        ? length
        : undefined;
  const newMeta: PartMeta = {
    url,
    etag: res.headers.get('etag') ?? undefined,
    lastModified: res.headers.get('last-modified') ?? undefined,
    total,
  };
  fs.writeFileSync(metaFile, JSON.stringify(newMeta));
  const fd = fs.openSync(part, start > 0 ? 'a' : 'w');
  let done = start;
  progress.start(`${path.basename(part, '.part')}${resumed ? ` (resuming at ${mb(start)} MB)` : ''}`, total);
  progress.update(done);
  try {
    if (!res.body) throw new Error('empty response');
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      fs.writeSync(fd, chunk);
      done += chunk.length;
      progress.update(done);
    }
  } finally {
    fs.closeSync(fd);
    progress.finish();
  }
  if (total !== undefined && done !== total) throw new Error(`connection closed after ${done} of ${total} bytes`);
  return { resumed };
}

/**
 * Downloads `remote` into `dir` (resuming a `.part` left by an interrupted run), verifies its checksum
 * and renames it into place. A file already in `dir` is verified and reused.
 */
export async function download(
  remote: RemoteFile,
  dir: string,
  progress: TransferProgress = silentProgress,
  dataset = 'NAME',
): Promise<DownloadResult> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, remote.name);
  const part = `${file}.part`;
  if (fs.existsSync(file)) {
    const sums = await hashFile(file);
    try {
      return {
        ...sums,
        file,
        url: remote.urls[0],
        verification: verify(remote, sums, file, dataset),
        resumed: false,
        cached: true,
      };
    } catch (e) {
      fs.rmSync(file, { force: true });
      progress.log(`${file}: ${(e as Error).message.split('. ')[0]}; downloading it again`);
    }
  }
  const errors: string[] = [];
  for (const url of remote.urls) {
    let resumed = false;
    try {
      ({ resumed } = await fetchOnce(url, part, progress));
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      errors.push(
        `${remote.urls.length > 1 ? `${url}: ` : ''}${err.message}${err.cause ? ` (${err.cause.code ?? err.cause.message})` : ''}`,
      );
      continue;
    }
    const sums = await hashFile(part);
    let verification: string;
    try {
      verification = verify(remote, sums, file, dataset);
    } catch (e) {
      fs.rmSync(part, { force: true });
      fs.rmSync(`${part}.json`, { force: true });
      throw e;
    }
    fs.renameSync(part, file);
    fs.rmSync(`${part}.json`, { force: true });
    return { ...sums, file, url, verification, resumed, cached: false };
  }
  const partial = fs.existsSync(part)
    ? ` ${mb(fs.statSync(part).size)} MB are kept in ${part}; running the command again resumes.`
    : '';
  throw new DataFileError(
    remote.urls[0],
    `cannot be downloaded (${errors.join('; ')})`,
    `Download it yourself (expected file ${expected(remote)}) from ${remote.urls.join(' or ')} and import it with \`hat data get ${dataset} --from PATH\`.${partial}`,
  );
}

/**
 * The files a dataset is built from, wherever they are: a folder (searched recursively), a zip, a tar or
 * tar.gz archive, or a plain file, and archives found inside a folder. Converters look files up by path
 * pattern, so a download, a manually downloaded archive and an extracted copy are read the same way.
 *
 * Zip members are read on demand (yauzl, from the central directory); tar members are read in one pass
 * (tar-stream), keeping only those a converter asks for.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import * as tarStream from 'tar-stream';
import * as yauzl from 'yauzl';
import { DataFileError } from '../idx';

export interface InputEntry {
  /** Path with '/' separators: relative to the folder given, or inside the archive (prefixed with the archive's path). */
  path: string;
  size: number;
  /** The file on disk this entry comes from (the archive for members). */
  origin: string;
  read(): Promise<Buffer>;
}

const ZIP = /\.zip$/i;
const TAR = /\.(tar|tar\.gz|tgz)$/i;
export const isArchive = (name: string): boolean => ZIP.test(name) || TAR.test(name);

const REDOWNLOAD =
  'The archive is damaged or incomplete: delete it and download it again (hat data get NAME), or check the file you passed with --from.';

function readStream(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

export class Inputs {
  private readonly closers: (() => void)[] = [];
  readonly entries: InputEntry[] = [];

  /**
   * Opens every path (folder, archive or file). `want` limits which tar members are kept in memory
   * (matched against the member's path); zip members and files are only read when asked for.
   */
  static async open(paths: string[], want: RegExp = /./): Promise<Inputs> {
    const inputs = new Inputs();
    try {
      for (const p of paths) await inputs.add(path.resolve(p), path.basename(p), want, true);
    } catch (e) {
      inputs.close();
      throw e;
    }
    inputs.entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return inputs;
  }

  private async add(abs: string, rel: string, want: RegExp, top: boolean): Promise<void> {
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (e) {
      throw new DataFileError(
        abs,
        `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
        'Check the path given with --from.',
      );
    }
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(abs).sort()) {
        if (name.endsWith('.part') || name.endsWith('.part.json') || name.startsWith('.')) continue;
        await this.add(path.join(abs, name), top ? name : `${rel}/${name}`, want, false);
      }
      return;
    }
    if (ZIP.test(abs)) return this.addZip(abs, rel);
    if (TAR.test(abs)) return this.addTar(abs, rel, want);
    this.entries.push({ path: rel, size: st.size, origin: abs, read: () => Promise.resolve(fs.readFileSync(abs)) });
  }

  private async addZip(file: string, rel: string): Promise<void> {
    const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
      yauzl.open(file, { lazyEntries: true, autoClose: false }, (err, z) => (err ? reject(err) : resolve(z))),
    ).catch((e: Error) => {
      throw new DataFileError(file, `is not a readable zip archive (${e.message})`, REDOWNLOAD);
    });
    this.closers.push(() => zip.close());
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (entry: yauzl.Entry) => {
        if (!entry.fileName.endsWith('/')) {
          this.entries.push({
            path: `${rel}/${entry.fileName}`,
            size: entry.uncompressedSize,
            origin: file,
            read: () =>
              new Promise<Buffer>((res, rej) =>
                zip.openReadStream(entry, (err, s) => {
                  if (err) rej(err);
                  else readStream(s).then(res, rej);
                }),
              ).catch((e: Error) => {
                throw new DataFileError(
                  file,
                  `member ${entry.fileName} cannot be extracted (${e.message})`,
                  REDOWNLOAD,
                );
              }),
          });
        }
        zip.readEntry();
      });
      zip.on('end', () => resolve());
      zip.on('error', (e: Error) => reject(new DataFileError(file, `corrupt zip archive (${e.message})`, REDOWNLOAD)));
      zip.readEntry();
    });
  }

  private async addTar(file: string, rel: string, want: RegExp): Promise<void> {
    const head = Buffer.alloc(2);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, head, 0, 2, 0);
    fs.closeSync(fd);
    const gz = head[0] === 0x1f && head[1] === 0x8b;
    const extract = tarStream.extract();
    const found: InputEntry[] = [];
    let members = 0;
    extract.on('entry', (header, stream, next) => {
      const name = `${rel}/${header.name.replace(/^\.\//, '')}`;
      if (header.type === 'file' || header.type === 'contiguous-file') members++;
      if ((header.type === 'file' || header.type === 'contiguous-file') && want.test(name)) {
        readStream(stream as unknown as NodeJS.ReadableStream).then((data) => {
          found.push({ path: name, size: data.length, origin: file, read: () => Promise.resolve(data) });
          next();
        }, next);
      } else {
        stream.on('end', () => next());
        stream.resume();
      }
    });
    try {
      const source = fs.createReadStream(file);
      if (gz) await pipeline(source, zlib.createGunzip(), extract);
      else await pipeline(source, extract);
    } catch (e) {
      const msg = (e as Error).message;
      throw new DataFileError(
        file,
        `${gz && /gzip|header check|unexpected end|incorrect/i.test(msg) ? 'corrupt or truncated gzip data' : 'corrupt or truncated tar archive'} (${msg})`,
        REDOWNLOAD,
      );
    }
    if (members === 0) throw new DataFileError(file, 'is an empty or unreadable tar archive', REDOWNLOAD);
    this.entries.push(...found);
  }

  /** Entries whose path matches (tested on '/' + path). */
  find(pattern: RegExp): InputEntry[] {
    return this.entries.filter((e) => pattern.test(`/${e.path}`));
  }

  /** The single entry matching `pattern`, or undefined; several matches are an error. */
  one(pattern: RegExp, what: string): InputEntry | undefined {
    const hits = this.find(pattern);
    if (hits.length > 1)
      throw new DataFileError(
        hits[1].origin,
        `holds several ${what} (${hits
          .slice(0, 3)
          .map((h) => h.path)
          .join(', ')})`,
        'Pass only one copy with --from.',
      );
    return hits[0];
  }

  describe(): string {
    const origins = [...new Set(this.entries.map((e) => path.basename(e.origin)))];
    return `${this.entries.length} files from ${origins.slice(0, 5).join(', ')}${origins.length > 5 ? ', ...' : ''}`;
  }

  close(): void {
    for (const c of this.closers.splice(0)) c();
  }
}

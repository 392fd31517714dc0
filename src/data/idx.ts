/**
 * IDX files (the MNIST container format), optionally gzip'd: unsigned-byte arrays with their shape.
 * The dataset cache stores images as IDX4 (N, H, W, C) and labels as IDX1 (N); see dat/README.md.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { writeFileAtomic } from '../core/io';
import { UserError } from '../core/errors';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export class DataFileError extends UserError {
  constructor(
    readonly file: string,
    problem: string,
    advice: string,
  ) {
    super(`${file}: ${problem}. ${advice}`);
    this.name = 'DataFileError';
  }
}

const UBYTE = 0x08;
const FIX = 'Delete the file and fetch it again (hat data get NAME), or point --data-dir at a good copy.';

/** Parse IDX bytes (already decompressed). Only unsigned-byte IDX is used by the datasets. */
export function parseIdx(bytes: Uint8Array, file = '<buffer>'): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0)
    throw new DataFileError(file, 'not an IDX file (bad magic number)', FIX);
  if (bytes[2] !== UBYTE)
    throw new DataFileError(file, `IDX element type 0x${bytes[2].toString(16)} is not unsigned byte`, FIX);
  const ndim = bytes[3];
  if (ndim < 1 || bytes.length < 4 + 4 * ndim) throw new DataFileError(file, 'truncated IDX header', FIX);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let d = 0; d < ndim; d++) shape.push(view.getInt32(4 + 4 * d, false));
  if (shape.some((d) => d < 0))
    throw new DataFileError(file, `IDX header has a negative size (${shape.join('x')})`, FIX);
  const size = shape.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * ndim;
  if (bytes.length - offset !== size) {
    throw new DataFileError(
      file,
      `IDX payload is ${bytes.length - offset} bytes but the header (${shape.join('x')}) says ${size}`,
      FIX,
    );
  }
  return { shape, data: bytes.subarray(offset, offset + size) };
}

export function encodeIdx(array: IdxArray): Uint8Array {
  const size = array.shape.reduce((a, b) => a * b, 1);
  if (size !== array.data.length)
    throw new Error(`encodeIdx: shape ${array.shape} needs ${size} bytes, got ${array.data.length}`);
  const header = new Uint8Array(4 + 4 * array.shape.length);
  const view = new DataView(header.buffer);
  header[2] = UBYTE;
  header[3] = array.shape.length;
  array.shape.forEach((d, i) => view.setInt32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + size);
  out.set(header, 0);
  out.set(array.data, header.length);
  return out;
}

/** Read an IDX file; gzip is detected from its magic bytes, not its name. */
export function readIdx(file: string): IdxArray {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    throw new DataFileError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, FIX);
  }
  return parseIdx(gunzipIfNeeded(raw, file, FIX), file);
}

/** gzip'd bytes inflated (detected by the gzip magic, not the name), others as they are; damage is a DataFileError with `advice`. */
export function gunzipIfNeeded(bytes: Buffer, file: string, advice: string): Buffer {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return zlib.gunzipSync(bytes);
    } catch (e) {
      throw new DataFileError(file, `corrupt or truncated gzip data (${(e as Error).message})`, advice);
    }
  }
  return bytes;
}

/** Write gzip'd IDX deterministically (level 9, no name, mtime 0), atomically. */
export function writeIdx(file: string, array: IdxArray): void {
  writeFileAtomic(file, zlib.gzipSync(encodeIdx(array), { level: 9 }));
}

/** The shape in an IDX file's header, reading only its start (gzip'd or not). */
export function readIdxShape(file: string): number[] {
  let head: Buffer;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      head = Buffer.alloc(4096);
      head = head.subarray(0, fs.readSync(fd, head, 0, head.length, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new DataFileError(file, `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, FIX);
  }
  let bytes: Uint8Array = head;
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw new DataFileError(file, `corrupt gzip data (${(e as Error).message})`, FIX);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== UBYTE)
    throw new DataFileError(file, 'not an unsigned-byte IDX file (bad magic number)', FIX);
  const ndim = bytes[3];
  if (bytes.length < 4 + 4 * ndim) throw new DataFileError(file, 'truncated IDX header', FIX);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: ndim }, (_, d) => view.getInt32(4 + 4 * d, false));
  if (!ndim || shape.some((d) => d < 0))
    throw new DataFileError(file, `IDX header has no or a negative size (${shape.join('x')})`, FIX);
  return shape;
}

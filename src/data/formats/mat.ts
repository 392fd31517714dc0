/**
 * MATLAB v5 MAT-files (as SVHN's `train_32x32.mat`/`test_32x32.mat`): the 128-byte header, then data
 * elements, each possibly zlib-compressed (miCOMPRESSED). Numeric matrices are read (any storage type, as
 * MATLAB stores e.g. a double matrix of small integers as uint8); cells, structs, chars and sparse matrices
 * are listed but not decoded. Matrices are column-major: element (i0, i1, ...) is at i0 + d0*(i1 + d1*...).
 */
import * as zlib from 'node:zlib';

export class MatFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MatFileError';
  }
}

export interface MatArray {
  name: string;
  /** mx class: 'double', 'single', 'int8', 'uint8', ..., or 'cell'/'struct'/'char'/'sparse'/'object' (not decoded). */
  class: string;
  dims: number[];
  /** Raw bytes of the real part when stored as uint8/int8 (no copy), else undefined. */
  bytes?: Uint8Array;
  /** Numeric values of the real part (for numeric classes). */
  values(): Float64Array;
}

const MX_CLASSES: Record<number, string> = {
  1: 'cell',
  2: 'struct',
  3: 'object',
  4: 'char',
  5: 'sparse',
  6: 'double',
  7: 'single',
  8: 'int8',
  9: 'uint8',
  10: 'int16',
  11: 'uint16',
  12: 'int32',
  13: 'uint32',
  14: 'int64',
  15: 'uint64',
};
const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
};
const MI_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1 };

interface Element {
  type: number;
  data: Uint8Array;
}

class Reader {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly le: boolean,
    public pos = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }
  element(): Element {
    const { bytes, view, le } = this;
    if (this.pos + 8 > bytes.length) throw new MatFileError(`truncated data element tag at offset ${this.pos}`);
    const first = view.getUint32(this.pos, le);
    if (first >>> 16 !== 0) {
      // small data element: 2-byte size, 2-byte type, up to 4 bytes of data in the tag
      const type = first & 0xffff;
      const n = first >>> 16;
      if (n > 4) throw new MatFileError(`bad small data element at offset ${this.pos}`);
      const data = bytes.subarray(this.pos + 4, this.pos + 4 + n);
      this.pos += 8;
      return { type, data };
    }
    const type = first;
    const n = view.getUint32(this.pos + 4, le);
    const start = this.pos + 8;
    if (start + n > bytes.length)
      throw new MatFileError(
        `truncated file: a data element of ${n} bytes at offset ${this.pos} runs past the end (${bytes.length} bytes)`,
      );
    this.pos = start + (type === MI.COMPRESSED ? n : Math.ceil(n / 8) * 8);
    return { type, data: bytes.subarray(start, start + n) };
  }
}

function numbers(el: Element, le: boolean): Float64Array {
  const size = MI_SIZE[el.type];
  if (!size) throw new MatFileError(`data type ${el.type} is not numeric`);
  const n = Math.floor(el.data.length / size);
  const v = new DataView(el.data.buffer, el.data.byteOffset, el.data.byteLength);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * size;
    switch (el.type) {
      case MI.INT8:
        out[i] = v.getInt8(o);
        break;
      case MI.UINT8:
      case MI.UTF8:
        out[i] = v.getUint8(o);
        break;
      case MI.INT16:
        out[i] = v.getInt16(o, le);
        break;
      case MI.UINT16:
        out[i] = v.getUint16(o, le);
        break;
      case MI.INT32:
        out[i] = v.getInt32(o, le);
        break;
      case MI.UINT32:
        out[i] = v.getUint32(o, le);
        break;
      case MI.SINGLE:
        out[i] = v.getFloat32(o, le);
        break;
      case MI.DOUBLE:
        out[i] = v.getFloat64(o, le);
        break;
      case MI.INT64:
        out[i] = Number(v.getBigInt64(o, le));
        break;
      case MI.UINT64:
        out[i] = Number(v.getBigUint64(o, le));
        break;
    }
  }
  return out;
}

function matrix(data: Uint8Array, le: boolean): MatArray {
  const r = new Reader(data, le);
  const flags = r.element();
  if (flags.type !== MI.UINT32 || flags.data.length < 8) throw new MatFileError('bad array flags');
  const fv = new DataView(flags.data.buffer, flags.data.byteOffset, 8);
  const cls = MX_CLASSES[fv.getUint32(0, le) & 0xff] ?? 'unknown';
  const dimsEl = r.element();
  const dims = Array.from(numbers(dimsEl, le));
  const nameEl = r.element();
  const name = Buffer.from(nameEl.data).toString('latin1');
  const numeric = !['cell', 'struct', 'object', 'char', 'sparse', 'unknown'].includes(cls);
  if (!numeric)
    return {
      name,
      class: cls,
      dims,
      values: () => {
        throw new MatFileError(`'${name}' is a ${cls} array, not numeric`);
      },
    };
  const real = r.element();
  const count = dims.reduce((a, b) => a * b, 1);
  const size = MI_SIZE[real.type];
  if (!size) throw new MatFileError(`'${name}': unexpected storage type ${real.type}`);
  if (real.data.length !== count * size)
    throw new MatFileError(
      `'${name}': ${real.data.length} bytes of data for dims ${dims.join('x')} (needs ${count * size}): truncated or corrupt`,
    );
  const bytes = real.type === MI.UINT8 || real.type === MI.INT8 ? real.data : undefined;
  return { name, class: cls, dims, bytes, values: () => numbers(real, le) };
}

/** All top-level variables of a v5 MAT-file. */
export function readMat(file: Uint8Array): Map<string, MatArray> {
  if (file.length < 128) throw new MatFileError(`not a MAT-file (${file.length} bytes, the header alone is 128)`);
  const text = Buffer.from(file.subarray(0, 116)).toString('latin1');
  const endian = Buffer.from(file.subarray(126, 128)).toString('latin1');
  if (!text.startsWith('MATLAB') || (endian !== 'IM' && endian !== 'MI'))
    throw new MatFileError('not a MATLAB v5 MAT-file (bad header)');
  const le = endian === 'IM';
  if (new DataView(file.buffer, file.byteOffset, 128).getUint16(124, le) === 0x0200 || text.startsWith('MATLAB 7.3')) {
    throw new MatFileError('this is a MATLAB v7.3 (HDF5) file; only v5 MAT-files are read (SVHN distributes v5)');
  }
  const out = new Map<string, MatArray>();
  const r = new Reader(file, le, 128);
  while (!r.done) {
    if (file.length - r.pos < 8) break; // trailing padding
    let el = r.element();
    if (el.type === MI.COMPRESSED) {
      let inflated: Uint8Array;
      try {
        inflated = zlib.inflateSync(el.data);
      } catch (e) {
        throw new MatFileError(`corrupt compressed data element (${(e as Error).message})`);
      }
      el = new Reader(inflated, le).element();
    }
    if (el.type !== MI.MATRIX) continue;
    const m = matrix(el.data, le);
    out.set(m.name, m);
  }
  return out;
}

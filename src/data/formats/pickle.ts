/**
 * A minimal Python unpickler for the dataset pickles of the reference's distribution (TrafficSigns
 * `train.p`/`test.p`, FaceScrub `facescrub_{train,test}_100.pkl`, NotMNIST `notmnist_{train,test}.pkl`):
 * dicts, lists, tuples, strings, numbers and numpy arrays (`numpy.core.multiarray._reconstruct` with a
 * `numpy.dtype`, or protocol 5's `_frombuffer`), protocols 0-5, pickles written by Python 2 or 3.
 *
 * It executes nothing: every global is a named placeholder, and only the few numpy/builtin constructors
 * above are interpreted. Anything else becomes an inert PyObject.
 */

export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

export class PyObject {
  state: unknown;
  constructor(
    readonly cls: PyGlobal,
    readonly args: unknown[],
  ) {}
}

export interface DType {
  /** numpy kind: 'u' unsigned, 'i' signed, 'f' float, 'b' bool. */
  kind: string;
  itemsize: number;
  littleEndian: boolean;
}

export class NdArray {
  shape: number[] = [];
  dtype: DType = { kind: 'u', itemsize: 1, littleEndian: true };
  fortran = false;
  data: Uint8Array = new Uint8Array(0);
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

const NUMPY_RECONSTRUCT = new Set(['numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct']);
const NUMPY_FROMBUFFER = new Set(['numpy.core.numeric._frombuffer', 'numpy._core.numeric._frombuffer']);
const NUMPY_SCALAR = new Set(['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar']);

function parseDtype(spec: string): DType {
  const m = /^([<>|=]?)(b1|[iu][1248]|f[48])$/.exec(spec);
  if (!m) throw new PickleError(`numpy dtype '${spec}' is not supported (bool, integers and floats are)`);
  return { kind: m[2][0], itemsize: Number(m[2].slice(1)), littleEndian: m[1] !== '>' };
}

/** A numpy shape from a pickle: non-negative integers (a corrupt pickle can hold anything there). */
function shapeOf(x: unknown): number[] {
  if (!Array.isArray(x)) throw new PickleError('corrupt numpy array (its shape is not a tuple)');
  const shape = x.map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0) || shape.reduce((a, b) => a * b, 1) > 2 ** 32)
    throw new PickleError(`corrupt numpy array (shape ${shape.join(', ')})`);
  return shape;
}

function dtypeOf(x: unknown): DType {
  const d = x as DType | null;
  if (!d || typeof d !== 'object' || typeof d.kind !== 'string' || typeof d.itemsize !== 'number')
    throw new PickleError('corrupt numpy array (its dtype is not a numpy.dtype)');
  return { ...d };
}

function isBytes(x: unknown): x is Uint8Array {
  return x instanceof Uint8Array;
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

function dictKey(k: unknown): unknown {
  return isBytes(k) ? latin1(k) : k;
}

function str(x: unknown): string {
  if (typeof x === 'string') return x;
  if (isBytes(x)) return latin1(x);
  throw new PickleError(`expected a string, got ${typeof x}`);
}

function pyRepr(s: string): string {
  // protocol 0 STRING: a Python literal in quotes
  const q = s[0];
  if ((q !== "'" && q !== '"') || s[s.length - 1] !== q) throw new PickleError('bad STRING literal');
  return s
    .slice(1, -1)
    .replace(/\\(x[0-9a-fA-F]{2}|n|r|t|\\|'|")/g, (_m, e: string) =>
      e[0] === 'x'
        ? String.fromCharCode(parseInt(e.slice(1), 16))
        : ({ n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[e],
    );
}

/**
 * Unpickles `bytes`. Dicts become Maps (bytes keys decoded as latin-1), tuples and lists arrays. Anything that
 * goes wrong on the way (an opcode applied to the wrong kind of value) is a PickleError: the pickle is corrupt.
 */
export function unpickle(bytes: Uint8Array): unknown {
  try {
    return interpret(bytes);
  } catch (e) {
    if (e instanceof PickleError) throw e;
    throw new PickleError(`corrupt pickle (${(e as Error).message})`);
  }
}

function interpret(bytes: Uint8Array): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number) => {
    if (pos + n > bytes.length)
      throw new PickleError(`truncated pickle (needs ${n} bytes at offset ${pos} of ${bytes.length})`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError('object too large');
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new PickleError('truncated pickle (no end of line)');
    const s = latin1(bytes.subarray(pos, end));
    pos = end + 1;
    return s.endsWith('\r') ? s.slice(0, -1) : s;
  };
  const utf8 = (n: number) => Buffer.from(take(n)).toString('utf8');
  const pop = () => {
    if (!stack.length) throw new PickleError('corrupt pickle (stack underflow)');
    return stack.pop();
  };
  const top = () => {
    if (!stack.length) throw new PickleError('corrupt pickle (empty stack)');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw new PickleError('corrupt pickle (no MARK)');
    return stack.splice(m);
  };
  const longFrom = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  const reduce = (fn: unknown, args: unknown[]): unknown => {
    if (fn instanceof PyGlobal) {
      const q = fn.qualified;
      if (NUMPY_RECONSTRUCT.has(q)) return new NdArray();
      if (q === 'numpy.dtype') {
        const dt = parseDtype(str(args[0]));
        return dt;
      }
      if (NUMPY_FROMBUFFER.has(q)) {
        const [buf, dtype, shape, order] = args as [unknown, unknown, unknown, unknown];
        if (!isBytes(buf)) throw new PickleError('corrupt numpy array (_frombuffer without bytes)');
        const a = new NdArray();
        a.data = buf;
        a.dtype = dtypeOf(dtype);
        a.shape = shapeOf(shape);
        a.fortran = str(order) === 'F';
        return a;
      }
      if (NUMPY_SCALAR.has(q)) {
        const a = new NdArray();
        a.dtype = dtypeOf(args[0]);
        a.data = isBytes(args[1]) ? args[1] : Buffer.from(str(args[1]), 'latin1');
        return numericValues(a)[0];
      }
      if (q === '_codecs.encode') return Uint8Array.from(Buffer.from(str(args[0]), 'latin1'));
      if (q === '__builtin__.bytearray' || q === 'builtins.bytearray')
        return args.length
          ? isBytes(args[0])
            ? args[0]
            : Uint8Array.from(Buffer.from(str(args[0]), 'latin1'))
          : new Uint8Array(0);
      if (q === 'collections.OrderedDict') return new Map();
    }
    if (!(fn instanceof PyGlobal)) throw new PickleError('corrupt pickle (REDUCE of a non-callable)');
    return new PyObject(fn, args);
  };

  const build = (obj: unknown, state: unknown): void => {
    if (obj instanceof NdArray) {
      const s = state as unknown[];
      if (!Array.isArray(s) || s.length < 5) throw new PickleError('unexpected numpy array state');
      obj.shape = shapeOf(s[1]);
      obj.dtype = dtypeOf(s[2]);
      obj.fortran = Boolean(s[3]);
      const raw = s[4];
      if (isBytes(raw)) obj.data = raw;
      else if (typeof raw === 'string') obj.data = Uint8Array.from(Buffer.from(raw, 'latin1'));
      else throw new PickleError('numpy arrays of Python objects are not supported');
      return;
    }
    if (obj && typeof obj === 'object' && 'kind' in obj && 'itemsize' in obj) {
      // numpy dtype state: (version, byteorder, ...)
      const s = state as unknown[];
      const order = Array.isArray(s) ? str(s[1]) : '|';
      (obj as DType).littleEndian = order !== '>';
      return;
    }
    if (obj instanceof PyObject) obj.state = state;
    else if (obj instanceof Map && state instanceof Map) for (const [k, v] of state) obj.set(k, v);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80:
        u8();
        break; // PROTO
      case 0x95:
        u64();
        break; // FRAME
      case 0x2e: {
        // STOP
        if (stack.length !== 1) throw new PickleError('corrupt pickle (stack not empty at STOP)');
        return stack[0];
      }
      case 0x28:
        marks.push(stack.length);
        break; // MARK
      case 0x30:
        pop();
        break;
      case 0x31:
        popMark();
        break;
      case 0x32:
        stack.push(top());
        break;
      case 0x4e:
        stack.push(null);
        break;
      case 0x88:
        stack.push(true);
        break;
      case 0x89:
        stack.push(false);
        break;
      case 0x49: {
        // INT
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : Number(s));
        break;
      }
      case 0x4a:
        stack.push(i32());
        break;
      case 0x4b:
        stack.push(u8());
        break;
      case 0x4d:
        stack.push(u16());
        break;
      case 0x4c: {
        const s = line().replace(/L$/, '');
        const v = BigInt(s);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x8a:
        stack.push(longFrom(take(u8())));
        break;
      case 0x8b:
        stack.push(longFrom(take(i32())));
        break;
      case 0x46:
        stack.push(Number(line()));
        break;
      case 0x47:
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x53:
        stack.push(Uint8Array.from(Buffer.from(pyRepr(line()), 'latin1')));
        break; // STRING (py2 str)
      case 0x54:
        stack.push(take(i32()));
        break; // BINSTRING
      case 0x55:
        stack.push(take(u8()));
        break; // SHORT_BINSTRING
      case 0x42:
        stack.push(take(u32()));
        break; // BINBYTES
      case 0x43:
        stack.push(take(u8()));
        break; // SHORT_BINBYTES
      case 0x8e:
        stack.push(take(u64()));
        break; // BINBYTES8
      case 0x96:
        stack.push(take(u64()));
        break; // BYTEARRAY8
      case 0x56:
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))));
        break; // UNICODE
      case 0x58:
        stack.push(utf8(u32()));
        break;
      case 0x8c:
        stack.push(utf8(u8()));
        break;
      case 0x8d:
        stack.push(utf8(u64()));
        break;
      case 0x97:
      case 0x98:
        throw new PickleError('out-of-band pickle buffers are not supported');
      case 0x5d:
        stack.push([]);
        break;
      case 0x29:
        stack.push([]);
        break;
      case 0x7d:
        stack.push(new Map());
        break;
      case 0x8f:
        stack.push(new Set());
        break;
      case 0x6c:
        stack.push(popMark());
        break; // LIST
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x91:
        stack.push(new Set(popMark()));
        break; // FROZENSET
      case 0x85:
        stack.push([pop()]);
        break;
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new Map<unknown, unknown>();
        for (let i = 0; i + 1 < items.length; i += 2) d.set(dictKey(items[i]), items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x61: {
        const v = pop();
        (top() as unknown[]).push(v);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        (top() as unknown[]).push(...items);
        break;
      } // APPENDS
      case 0x90: {
        const items = popMark();
        const s = top() as Set<unknown>;
        items.forEach((i) => s.add(i));
        break;
      }
      case 0x73: {
        const v = pop();
        const k = pop();
        (top() as Map<unknown, unknown>).set(dictKey(k), v);
        break;
      } // SETITEM
      case 0x75: {
        // SETITEMS
        const items = popMark();
        const d = top() as Map<unknown, unknown>;
        for (let i = 0; i + 1 < items.length; i += 2) d.set(dictKey(items[i]), items[i + 1]);
        break;
      }
      case 0x63: {
        const module = line();
        const name = line();
        stack.push(new PyGlobal(module, name));
        break;
      } // GLOBAL
      case 0x93: {
        const name = str(pop());
        const module = str(pop());
        stack.push(new PyGlobal(module, name));
        break;
      } // STACK_GLOBAL
      case 0x52: {
        const args = pop() as unknown[];
        const fn = pop();
        stack.push(reduce(fn, args));
        break;
      } // REDUCE
      case 0x81: {
        const args = pop() as unknown[];
        const cls = pop();
        stack.push(cls instanceof PyGlobal ? new PyObject(cls, args) : null);
        break;
      } // NEWOBJ
      case 0x92: {
        pop();
        const args = pop() as unknown[];
        const cls = pop();
        stack.push(cls instanceof PyGlobal ? new PyObject(cls, args) : null);
        break;
      } // NEWOBJ_EX
      case 0x62: {
        const state = pop();
        build(top(), state);
        break;
      } // BUILD
      case 0x70:
        memo.set(Number(line()), top());
        break;
      case 0x71:
        memo.set(u8(), top());
        break;
      case 0x72:
        memo.set(u32(), top());
        break;
      case 0x94:
        memo.set(memo.size, top());
        break;
      case 0x67:
      case 0x68:
      case 0x6a: {
        const k = op === 0x67 ? Number(line()) : op === 0x68 ? u8() : u32();
        if (!memo.has(k)) throw new PickleError(`corrupt pickle (memo ${k} missing)`);
        stack.push(memo.get(k));
        break;
      }
      default:
        throw new PickleError(`unsupported or corrupt pickle opcode 0x${op.toString(16)} at offset ${pos - 1}`);
    }
  }
}

/** Element values of a numeric array as numbers (C order). */
export function numericValues(a: NdArray): Float64Array {
  const n = a.size;
  const { kind, itemsize, littleEndian } = a.dtype;
  if (a.data.length < n * itemsize)
    throw new PickleError(`numpy array data is ${a.data.length} bytes, its shape needs ${n * itemsize}`);
  const v = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const out = new Float64Array(n);
  const get = (i: number): number => {
    const o = i * itemsize;
    if (kind === 'f') return itemsize === 4 ? v.getFloat32(o, littleEndian) : v.getFloat64(o, littleEndian);
    if (kind === 'u' || kind === 'b')
      return itemsize === 1
        ? v.getUint8(o)
        : itemsize === 2
          ? v.getUint16(o, littleEndian)
          : itemsize === 4
            ? v.getUint32(o, littleEndian)
            : Number(v.getBigUint64(o, littleEndian));
    return itemsize === 1
      ? v.getInt8(o)
      : itemsize === 2
        ? v.getInt16(o, littleEndian)
        : itemsize === 4
          ? v.getInt32(o, littleEndian)
          : Number(v.getBigInt64(o, littleEndian));
  };
  for (let i = 0; i < n; i++) out[i] = get(i);
  return a.fortran && a.shape.length > 1 ? fortranToC(out, a.shape) : out;
}

function fortranToC<T extends Float64Array | Uint8Array>(src: T, shape: number[]): T {
  const out = new (src.constructor as { new (n: number): T })(src.length);
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  const fstride = shape.map((_, d) => shape.slice(0, d).reduce((a, b) => a * b, 1));
  for (let c = 0; c < src.length; c++) {
    let f = 0;
    for (let d = 0; d < nd; d++) f += idx[d] * fstride[d];
    out[c] = src[f];
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * The array's bytes as uint8 in C order. 1-byte arrays (uint8, and int8 reinterpreted as uint8 as the
 * reference's `astype(np.uint8)` does) are used as they are; wider integers must hold values 0..255.
 */
export function asUint8(a: NdArray, what: string): Uint8Array {
  if (a.dtype.itemsize === 1 && a.dtype.kind !== 'f') {
    const n = a.size;
    if (a.data.length < n)
      throw new PickleError(`${what}: numpy array data is ${a.data.length} bytes, its shape (${a.shape}) needs ${n}`);
    const d = a.data.subarray(0, n);
    return a.fortran && a.shape.length > 1 ? fortranToC(Uint8Array.from(d), a.shape) : d;
  }
  const v = numericValues(a);
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] >= 0 && v[i] <= 255 && Number.isInteger(v[i])))
      throw new PickleError(`${what}: value ${v[i]} at ${i} does not fit in a byte`);
    out[i] = v[i];
  }
  return out;
}

/** `obj[key]` of an unpickled dict that must be a numpy array. */
export function arrayField(obj: unknown, key: string, what: string): NdArray {
  if (!(obj instanceof Map))
    throw new PickleError(`${what}: the pickle holds ${obj === null ? 'None' : typeof obj}, not a dict`);
  const v: unknown = obj.get(key);
  if (!(v instanceof NdArray)) {
    if (Array.isArray(v)) {
      // a list of ints (e.g. CIFAR python labels): make it a 1-D int64 array
      const a = new NdArray();
      a.shape = [v.length];
      a.dtype = { kind: 'i', itemsize: 8, littleEndian: true };
      const b = new DataView(new ArrayBuffer(8 * v.length));
      v.forEach((x, i) => {
        if (!Number.isSafeInteger(Number(x)))
          throw new PickleError(`${what}: '${key}' holds ${String(x)}, not an integer`);
        b.setBigInt64(8 * i, BigInt(Number(x)), true);
      });
      a.data = new Uint8Array(b.buffer);
      return a;
    }
    throw new PickleError(
      `${what}: the dict has no numpy array '${key}' (keys: ${[...obj.keys()].map(String).join(', ')})`,
    );
  }
  return v;
}

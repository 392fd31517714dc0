/**
 * Turns stored uint8 samples into the network's float input, one batch at a time.
 *
 * Every preprocessing of the spec (normalise per channel, zero-pad to 32x32, replicate grey to 3 channels,
 * permute the pixels of a flattened image) is a map "output element k reads input byte source[k] of
 * channel channel[k]", so a batch is filled with one table look-up per element and datasets stay in memory
 * as bytes (the mixture's 300k images would be 3.7 GB as float32).
 */
/**
 * A preprocessing as data (saved with a model, so a loaded model preprocesses new images as its task did):
 * `flat` for the MLPs (normalise, optionally permute), `image` for the conv nets (pad, normalise, grey to RGB).
 */
export type PreprocessSpec =
  | { kind: 'flat'; inShape: [number, number, number]; mean: number; std: number; permutation?: number[] }
  | { kind: 'image'; inShape: [number, number, number]; size: number; mean: number[]; std: number[] };

export class Preprocess {
  /** Number of floats per sample. */
  readonly size: number;
  /** How it was made (`fromSpec` makes it again). */
  spec!: PreprocessSpec;
  constructor(
    /** Per-sample output shape (without the batch axis). */
    readonly outShape: number[],
    /** Bytes per stored sample. */
    readonly inSize: number,
    /** For each output element, the input byte it reads, or -1 for padding. */
    private readonly source: Int32Array,
    /** For each output element, its normalisation channel. */
    private readonly channel: Uint8Array,
    /** Normalised value of every byte value, per channel: lut[c * 256 + v]. */
    private readonly lut: Float32Array,
    /** Normalised value of a padding pixel (raw 0), per channel. */
    private readonly pad: Float32Array,
  ) {
    this.size = source.length;
  }

  /** Writes sample `row` of `images` at `dst[dstOffset ...]`. */
  write(images: Uint8Array, row: number, dst: Float32Array, dstOffset: number): void {
    const { source, channel, lut, pad, size } = this;
    const base = row * this.inSize;
    for (let k = 0; k < size; k++) {
      const s = source[k];
      dst[dstOffset + k] = s < 0 ? pad[channel[k]] : lut[(channel[k] << 8) | images[base + s]];
    }
  }
}

function normalisationTables(mean: number[], std: number[]) {
  const lut = new Float32Array(mean.length * 256);
  const pad = new Float32Array(mean.length);
  mean.forEach((m, c) => {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - m) / std[c];
    pad[c] = (0 - m) / std[c];
  });
  return { lut, pad };
}

/**
 * Flattened (H*W*C) vector for the MLPs: x = (pixel/255 - mean)/std, then optionally permuted:
 * out[k] = x[permutation[k]] (pmnist).
 */
export function flatPreprocess(
  inShape: [number, number, number],
  mean: number,
  std: number,
  permutation?: Int32Array,
): Preprocess {
  const n = inShape[0] * inShape[1] * inShape[2];
  if (permutation && permutation.length !== n)
    throw new Error(`permutation has ${permutation.length} entries for ${n} pixels`);
  const source = new Int32Array(n);
  for (let k = 0; k < n; k++) source[k] = permutation ? permutation[k] : k;
  const { lut, pad } = normalisationTables([mean], [std]);
  const p = new Preprocess([n], n, source, new Uint8Array(n), lut, pad);
  p.spec = { kind: 'flat', inShape, mean, std, ...(permutation ? { permutation: Array.from(permutation) } : {}) };
  return p;
}

/**
 * size x size x 3 image (NHWC) for the conv nets: zero-pads smaller images symmetrically (raw 0 before
 * normalising, as the reference pads MNIST 28 -> 32), normalises per channel and replicates a grey channel
 * to three.
 */
export function imagePreprocess(
  inShape: [number, number, number],
  size: number,
  mean: number[],
  std: number[],
): Preprocess {
  const [h, w, c] = inShape;
  if (h > size || w > size) throw new Error(`images of ${h}x${w} are larger than the network input ${size}x${size}`);
  if (c !== 1 && c !== 3) throw new Error(`images with ${c} channels are not supported (1 or 3)`);
  if (mean.length !== c || std.length !== c) throw new Error(`need ${c} channel statistics, got ${mean.length}`);
  const top = Math.floor((size - h) / 2);
  const left = Math.floor((size - w) / 2);
  const n = size * size * 3;
  const source = new Int32Array(n);
  const channel = new Uint8Array(n);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let ch = 0; ch < 3; ch++) {
        const k = (y * size + x) * 3 + ch;
        const cin = c === 1 ? 0 : ch;
        const iy = y - top;
        const ix = x - left;
        channel[k] = cin;
        source[k] = iy >= 0 && iy < h && ix >= 0 && ix < w ? (iy * w + ix) * c + cin : -1;
      }
    }
  }
  const { lut, pad } = normalisationTables(mean, std);
  const p = new Preprocess([size, size, 3], h * w * c, source, channel, lut, pad);
  p.spec = { kind: 'image', inShape, size, mean, std };
  return p;
}

/** The preprocessing a spec describes. */
export function fromSpec(spec: PreprocessSpec): Preprocess {
  return spec.kind === 'flat'
    ? flatPreprocess(
        spec.inShape,
        spec.mean,
        spec.std,
        spec.permutation ? Int32Array.from(spec.permutation) : undefined,
      )
    : imagePreprocess(spec.inShape, spec.size, spec.mean, spec.std);
}

/**
 * From a picture (a drawing on the canvas, a dropped file) to a task's stored image format: grey or colour
 * floats, cropped and resized by area averaging, and for grey 28x28 tasks placed as MNIST's digits are (the
 * digit scaled to fit a 20x20 box, aspect kept, then its centre of mass put at pixel (14, 14) of the 28x28
 * frame). No DOM here: plain arrays in, bytes out (the task's own preprocessing, src/data/preprocess.ts,
 * then turns the bytes into the network's input).
 */

/** An image as floats in [0, 1], channels interleaved ([H, W, C]). */
export interface Pixels {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Float32Array;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Grey (luminance) or RGB floats of RGBA bytes (as canvas ImageData holds them); transparent counts as black. */
export function fromRgba(rgba: ArrayLike<number>, width: number, height: number, channels: 1 | 3): Pixels {
  const data = new Float32Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    const a = rgba[4 * i + 3] / 255;
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]].map((v) => (v / 255) * a);
    if (channels === 1) data[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    else data.set([r, g, b], 3 * i);
  }
  return { width, height, channels, data };
}

/** The mean of the image's border pixels (all channels): above 0.5, it is a dark drawing on a light background. */
export function borderMean(p: Pixels): number {
  const { width: w, height: h, channels: c, data } = p;
  let sum = 0;
  let n = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (y !== 0 && y !== h - 1 && x !== 0 && x !== w - 1) continue;
      for (let k = 0; k < c; k++) sum += data[(y * w + x) * c + k];
      n += c;
    }
  return n ? sum / n : 0;
}

export function invert(p: Pixels): Pixels {
  return { ...p, data: p.data.map((v) => 1 - v) };
}

/** The smallest box holding every pixel brighter than `threshold` (any channel), or null for an empty image. */
export function boundingBox(p: Pixels, threshold = 0.1): Box | null {
  const { width: w, height: h, channels: c, data } = p;
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++)
        if (data[(y * w + x) * c + k] > threshold) {
          x0 = Math.min(x0, x);
          x1 = Math.max(x1, x);
          y0 = Math.min(y0, y);
          y1 = Math.max(y1, y);
        }
  return x1 < 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/**
 * Area-averaging weights along one axis: output pixel o covers source [start + o*s, start + (o+1)*s) with
 * s = length/out; each source pixel counts with the fraction of it that is covered.
 */
function axisWeights(start: number, length: number, out: number): { from: number; weights: number[] }[] {
  const s = length / out;
  return Array.from({ length: out }, (_, o) => {
    const a = start + o * s;
    const b = a + s;
    const from = Math.floor(a + 1e-9);
    const end = Math.min(Math.ceil(b - 1e-9), start + length); // not past the region (rounding)
    const weights: number[] = [];
    for (let i = from; i < end; i++) weights.push((Math.min(b, i + 1) - Math.max(a, i)) / s);
    return { from, weights };
  });
}

/** The region `box` of an image resized to outW x outH, each output pixel the mean of the area it covers. */
export function resizeArea(p: Pixels, box: Box, outW: number, outH: number): Pixels {
  const { width: w, channels: c, data } = p;
  const xs = axisWeights(box.x, box.width, outW);
  const ys = axisWeights(box.y, box.height, outH);
  // rows first (the box's rows, resized across), then columns
  const rows = new Float32Array(box.height * outW * c);
  for (let y = 0; y < box.height; y++)
    xs.forEach(({ from, weights }, ox) => {
      for (let k = 0; k < c; k++) {
        let v = 0;
        weights.forEach((wt, j) => (v += wt * data[((box.y + y) * w + from + j) * c + k]));
        rows[(y * outW + ox) * c + k] = v;
      }
    });
  const out = new Float32Array(outW * outH * c);
  ys.forEach(({ from, weights }, oy) => {
    for (let ox = 0; ox < outW; ox++)
      for (let k = 0; k < c; k++) {
        let v = 0;
        weights.forEach((wt, j) => (v += wt * rows[((from - box.y + j) * outW + ox) * c + k]));
        out[(oy * outW + ox) * c + k] = v;
      }
  });
  return { width: outW, height: outH, channels: c, data: out };
}

/** The centre of mass of a grey image, in pixel coordinates (a pixel's centre is at +0.5). */
export function centreOfMass(p: Pixels): [number, number] {
  let m = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < p.height; y++)
    for (let x = 0; x < p.width; x++) {
      const v = p.data[y * p.width + x];
      m += v;
      sx += v * (x + 0.5);
      sy += v * (y + 0.5);
    }
  return m > 0 ? [sx / m, sy / m] : [p.width / 2, p.height / 2];
}

/**
 * A grey image as MNIST's digits are made: the bright content's bounding box scaled to fit a `box` x `box`
 * square (aspect kept, area averaging), placed in a `size` x `size` frame with its centre of mass at the
 * centre. Null when there is nothing drawn.
 */
export function mnistLike(p: Pixels, size = 28, box = 20): Pixels | null {
  if (p.channels !== 1) throw new Error('mnistLike takes a grey image');
  const bb = boundingBox(p, 0.5 / 255); // every pixel that is not black, faint edges included
  if (!bb) return null;
  const f = box / Math.max(bb.width, bb.height);
  const w = Math.max(1, Math.round(bb.width * f));
  const h = Math.max(1, Math.round(bb.height * f));
  const digit = resizeArea(p, bb, w, h);
  // MNIST puts the centre of mass at pixel index size/2 (14 of 0..27; the centre of pixel 14 is at 14.5)
  const [cx, cy] = centreOfMass(digit);
  const left = Math.round(size / 2 + 0.5 - cx);
  const top = Math.round(size / 2 + 0.5 - cy);
  const data = new Float32Array(size * size);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const X = x + left;
      const Y = y + top;
      if (X >= 0 && X < size && Y >= 0 && Y < size) data[Y * size + X] = digit.data[y * w + x];
    }
  return { width: size, height: size, channels: 1, data };
}

/** Floats in [0, 1] to bytes, as datasets store pixels. */
export function toBytes(p: Pixels): Uint8Array {
  return Uint8Array.from(p.data, (v) => Math.round(255 * Math.min(1, Math.max(0, v))));
}

/**
 * A picture in a task's stored format [H, W, C]: grey pictures placed as MNIST digits when `centre` (else the
 * whole picture resized), colour ones resized whole. Null when a grey picture is empty.
 */
export function toStored(p: Pixels, shape: readonly number[], centre = true): Uint8Array | null {
  const [h, w, c] = shape;
  if (c === 1 && p.channels === 1) {
    if (centre && h === w) {
      const digit = mnistLike(p, h, Math.round((h * 20) / 28));
      return digit && toBytes(digit);
    }
    if (!boundingBox(p)) return null;
  }
  if (p.channels !== c) throw new Error(`a ${p.channels}-channel picture for a ${c}-channel task`);
  return toBytes(resizeArea(p, { x: 0, y: 0, width: p.width, height: p.height }, w, h));
}

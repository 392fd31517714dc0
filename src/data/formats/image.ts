/**
 * Image files of the original dataset distributions (GTSRB's PPM, notMNIST's PNG, FaceScrub's JPEG) decoded
 * to 8-bit pixels, and the resize to the network input.
 *
 * Resize method (documented in dat/README.md): bilinear interpolation with OpenCV's INTER_LINEAR geometry
 * (pixel centres at +0.5, source coordinate sx = (x + 0.5) * srcW / dstW - 0.5, clamped at the borders, no
 * anti-aliasing), the method of `cv2.resize(img, (32, 32))` that produced the Udacity GTSRB pickles the
 * reference uses. The arithmetic is float64 rounded to nearest (OpenCV uses 11-bit fixed point, so values
 * can differ from cv2's by 1).
 */
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

export interface Image {
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** HWC bytes. */
  data: Uint8Array;
}

export class ImageFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageFormatError';
  }
}

/** Netpbm P5 (grey) / P6 (RGB), maxval < 256, as GTSRB stores its images. */
export function decodePnm(bytes: Uint8Array): Image {
  let pos = 0;
  const token = (): string => {
    for (;;) {
      while (pos < bytes.length && /\s/.test(String.fromCharCode(bytes[pos]))) pos++;
      if (bytes[pos] === 0x23) {
        while (pos < bytes.length && bytes[pos] !== 0x0a && bytes[pos] !== 0x0d) pos++;
        continue;
      }
      break;
    }
    const start = pos;
    while (pos < bytes.length && !/\s/.test(String.fromCharCode(bytes[pos]))) pos++;
    return String.fromCharCode(...bytes.subarray(start, pos));
  };
  const magic = token();
  if (magic !== 'P5' && magic !== 'P6')
    throw new ImageFormatError(`not a binary PGM/PPM image (magic '${magic.slice(0, 2)}')`);
  const width = Number(token());
  const height = Number(token());
  const maxval = Number(token());
  if (!(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height)))
    throw new ImageFormatError('bad PPM size');
  if (!(maxval > 0 && maxval < 256)) throw new ImageFormatError(`PPM maxval ${maxval} is not supported (8-bit only)`);
  pos++; // the single whitespace after maxval
  const channels = magic === 'P6' ? 3 : 1;
  const size = width * height * channels;
  if (bytes.length - pos < size)
    throw new ImageFormatError(`truncated PPM: ${bytes.length - pos} of ${size} pixel bytes`);
  const data = Uint8Array.from(bytes.subarray(pos, pos + size));
  if (maxval !== 255) for (let i = 0; i < size; i++) data[i] = Math.round((data[i] * 255) / maxval);
  return { width, height, channels, data };
}

function fromRgba(width: number, height: number, rgba: Uint8Array, grey: boolean): Image {
  const n = width * height;
  if (grey) {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = rgba[4 * i];
    return { width, height, channels: 1, data };
  }
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    data[3 * i] = rgba[4 * i];
    data[3 * i + 1] = rgba[4 * i + 1];
    data[3 * i + 2] = rgba[4 * i + 2];
  }
  return { width, height, channels: 3, data };
}

/** PNG (pngjs): grey PNGs stay one channel, colour ones become RGB (alpha dropped). */
export function decodePng(bytes: Uint8Array): Image {
  let png;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new ImageFormatError(`bad PNG (${(e as Error).message})`);
  }
  // colour type bit 2 = colour; 0 (grey) and 4 (grey + alpha) are grey
  const grey = (png.colorType & 2) === 0;
  return fromRgba(png.width, png.height, png.data, grey);
}

/** JPEG (jpeg-js), always decoded to RGB. */
export function decodeJpeg(bytes: Uint8Array): Image {
  let img;
  try {
    img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 });
  } catch (e) {
    throw new ImageFormatError(`bad JPEG (${(e as Error).message ?? e})`);
  }
  return fromRgba(img.width, img.height, img.data, false);
}

/** Decodes PPM/PGM, PNG or JPEG, recognised by their magic bytes. */
export function decodeImage(bytes: Uint8Array): Image {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47)
    return decodePng(bytes);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpeg(bytes);
  if (bytes.length >= 2 && bytes[0] === 0x50 && (bytes[1] === 0x35 || bytes[1] === 0x36)) return decodePnm(bytes);
  throw new ImageFormatError('unknown image format (PPM, PGM, PNG and JPEG are read)');
}

export const IMAGE_EXTENSIONS = /\.(ppm|pgm|png|jpe?g)$/i;

/** Grey to RGB (replicated) or RGB to grey (ITU-R 601 luma, rounded), else the image itself. */
export function toChannels(img: Image, channels: 1 | 3): Image {
  if (img.channels === channels) return img;
  const n = img.width * img.height;
  if (channels === 3) {
    const data = new Uint8Array(3 * n);
    for (let i = 0; i < n; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = img.data[i];
    return { ...img, channels: 3, data };
  }
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++)
    data[i] = Math.round(0.299 * img.data[3 * i] + 0.587 * img.data[3 * i + 1] + 0.114 * img.data[3 * i + 2]);
  return { ...img, channels: 1, data };
}

function axis(src: number, dst: number): { i0: Int32Array; i1: Int32Array; w: Float64Array } {
  const i0 = new Int32Array(dst);
  const i1 = new Int32Array(dst);
  const w = new Float64Array(dst);
  const scale = src / dst;
  for (let x = 0; x < dst; x++) {
    const fx = (x + 0.5) * scale - 0.5;
    let x0 = Math.floor(fx);
    let a = fx - x0;
    if (x0 < 0) {
      x0 = 0;
      a = 0;
    }
    if (x0 >= src - 1) {
      x0 = src - 1;
      a = 0;
    }
    i0[x] = x0;
    i1[x] = Math.min(x0 + 1, src - 1);
    w[x] = a;
  }
  return { i0, i1, w };
}

/** Bilinear resize (OpenCV INTER_LINEAR geometry, see the file comment). Same size returns a copy. */
export function resizeBilinear(img: Image, width: number, height: number): Image {
  if (img.width === width && img.height === height) return { ...img, data: Uint8Array.from(img.data) };
  const c = img.channels;
  const xs = axis(img.width, width);
  const ys = axis(img.height, height);
  const out = new Uint8Array(width * height * c);
  const src = img.data;
  const sw = img.width;
  for (let y = 0; y < height; y++) {
    const r0 = ys.i0[y] * sw;
    const r1 = ys.i1[y] * sw;
    const b = ys.w[y];
    for (let x = 0; x < width; x++) {
      const c0 = xs.i0[x];
      const c1 = xs.i1[x];
      const a = xs.w[x];
      for (let ch = 0; ch < c; ch++) {
        const top = src[(r0 + c0) * c + ch] * (1 - a) + src[(r0 + c1) * c + ch] * a;
        const bottom = src[(r1 + c0) * c + ch] * (1 - a) + src[(r1 + c1) * c + ch] * a;
        out[(y * width + x) * c + ch] = Math.min(255, Math.max(0, Math.round(top * (1 - b) + bottom * b)));
      }
    }
  }
  return { width, height, channels: c, data: out };
}

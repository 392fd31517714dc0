/**
 * Predicting with a loaded model: images (PNG, JPEG, PPM/PGM files, or IDX batches) are brought to the stored
 * format of the task's dataset (size and channels), preprocessed as the task's images were, and given to the
 * task's head; the class, its name and its probability come back per input.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { OptionError, UserError } from '../core/errors';
import { type Image, ImageFormatError, decodeImage, resizeBilinear, toChannels } from '../data/formats/image';
import { gunzipIfNeeded, parseIdx } from '../data/idx';
import type { LoadedModel } from './store';

export interface Prediction {
  /** Where the input came from: a file, or file[i] of an IDX batch. */
  input: string;
  /** The predicted class (0-based), its name, and its probability. */
  class: number;
  name: string;
  probability: number;
  probabilities: number[];
}

/** An image in a stored format [H, W, C] (resized bilinearly, grey or RGB as needed; `invert` for dark-on-light drawings). */
export function toStored(img: Image, shape: readonly number[], invert = false): Uint8Array {
  const [h, w, c] = shape;
  const sized = toChannels(resizeBilinear(img, w, h), c as 1 | 3).data;
  return invert ? sized.map((v) => 255 - v) : sized;
}

/** The inputs of files: one image per image file, every sample of an IDX file ([N, H, W] or [N, H, W, C]). */
export function readInputs(
  files: readonly string[],
  shape: readonly number[],
  invert = false,
): { names: string[]; images: Uint8Array } {
  const [h, w, c] = shape;
  const size = h * w * c;
  const names: string[] = [];
  const parts: Uint8Array[] = [];
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw new UserError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    if (/\.(idx\d?-ubyte|ubyte)(\.gz)?$/i.test(file) || /-ubyte(\.gz)?$/.test(file)) {
      const idx = parseIdx(new Uint8Array(gunzipIfNeeded(bytes, file, 'Check the file.')), file);
      const [n, ih, iw, ic = 1] = idx.shape;
      const one = ih * iw * ic;
      for (let i = 0; i < n; i++) {
        const img: Image = {
          width: iw,
          height: ih,
          channels: ic as 1 | 3,
          data: idx.data.subarray(i * one, (i + 1) * one),
        };
        parts.push(toStored(img, shape, invert));
        names.push(`${path.basename(file)}[${i}]`);
      }
      continue;
    }
    let img: Image;
    try {
      img = decodeImage(new Uint8Array(bytes));
    } catch (e) {
      if (e instanceof ImageFormatError) throw new UserError(`${file}: cannot be decoded as an image (${e.message})`);
      throw e;
    }
    parts.push(toStored(img, shape, invert));
    names.push(path.basename(file));
  }
  const images = new Uint8Array(parts.length * size);
  parts.forEach((p, i) => images.set(p, i * size));
  return { names, images };
}

/** Class probabilities of task `task` (0-based) for stored-format images, in batches of 512. */
export function predictStored(
  model: LoadedModel,
  task: number,
  images: Uint8Array,
  names: readonly string[],
): Prediction[] {
  const { manifest, approach } = model;
  if (!(task >= 0 && task < manifest.learnt)) throw new OptionError(`the model has no learnt task ${task + 1}`);
  const pre = model.preprocess[task];
  const n = names.length;
  if (images.length !== n * pre.inSize) throw new OptionError(`expected ${n} images of ${pre.inSize} bytes`);
  const out: Prediction[] = [];
  for (let start = 0; start < n; start += 512) {
    const m = Math.min(512, n - start);
    const x = new Float32Array(m * pre.size);
    for (let i = 0; i < m; i++) pre.write(images, start + i, x, i * pre.size);
    const probs = tf.tidy(() => approach.predict(tf.tensor(x, [m, ...pre.outShape]), task));
    const rows = probs.arraySync();
    probs.dispose();
    rows.forEach((p, i) => {
      const k = p.indexOf(Math.max(...p));
      out.push({
        input: names[start + i],
        class: k,
        name: manifest.tasks[task].classNames[k] ?? String(k),
        probability: p[k],
        probabilities: p,
      });
    });
  }
  return out;
}

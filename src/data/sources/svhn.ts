/**
 * SVHN cropped digits (spec §6.2 id 3): train_32x32.mat and test_32x32.mat (MATLAB v5): X is
 * 32x32x3xN uint8 (column-major), y is Nx1 in 1..10 (10 = digit 0). Stored 32x32x3 HWC in file order,
 * label = y - 1 (the reference's mapping: digits 1-9 -> 0-8, digit 0 -> 9).
 */
import { DataFileError } from '../idx';
import { MatFileError, readMat } from '../formats/mat';
import { type InputEntry } from '../formats/archive';
import { ADVICE_SOURCE, type BuiltSplit, type DatasetSource, need } from './common';

export function svhnSplit(bytes: Uint8Array, file: string): BuiltSplit {
  let vars;
  try {
    vars = readMat(bytes);
  } catch (e) {
    if (e instanceof MatFileError) throw new DataFileError(file, e.message, ADVICE_SOURCE);
    throw e;
  }
  const X = vars.get('X');
  const y = vars.get('y');
  if (!X || !y)
    throw new DataFileError(
      file,
      `has no variables X and y (has ${[...vars.keys()].join(', ') || 'none'})`,
      ADVICE_SOURCE,
    );
  const [h, w, c, n] = X.dims;
  if (X.dims.length !== 4 || h !== 32 || w !== 32 || c !== 3 || !X.bytes)
    throw new DataFileError(file, `X is ${X.class} ${X.dims.join('x')}, expected uint8 32x32x3xN`, ADVICE_SOURCE);
  const yv = y.values();
  if (yv.length !== n) throw new DataFileError(file, `y has ${yv.length} labels for ${n} images`, ADVICE_SOURCE);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (!(yv[i] >= 1 && yv[i] <= 10 && Number.isInteger(yv[i])))
      throw new DataFileError(file, `label y(${i + 1}) = ${yv[i]} is not in 1..10`, ADVICE_SOURCE);
    labels[i] = yv[i] - 1;
  }
  // column-major X(r, col, ch, i) at r + 32*(col + 32*(ch + 3*i))  ->  HWC
  const src = X.bytes;
  const images = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) {
    const base = i * 3072;
    for (let ch = 0; ch < 3; ch++) {
      for (let col = 0; col < 32; col++) {
        const s = base + (ch * 32 + col) * 32;
        for (let r = 0; r < 32; r++) images[base + (r * 32 + col) * 3 + ch] = src[s + r];
      }
    }
  }
  return { n, images, labels };
}

export const svhn: DatasetSource = {
  name: 'svhn',
  variants: [
    {
      id: 'mat',
      description: 'SVHN (cropped digits), Y. Netzer et al. 2011, http://ufldl.stanford.edu/housenumbers/',
      files: [
        {
          name: 'train_32x32.mat',
          urls: ['http://ufldl.stanford.edu/housenumbers/train_32x32.mat'],
          md5: 'e26dedcc434d2e4c54c9b2d4a06d8373',
          bytes: 182040794,
          checksumSource: 'md5 as listed by torchvision',
        },
        {
          name: 'test_32x32.mat',
          urls: ['http://ufldl.stanford.edu/housenumbers/test_32x32.mat'],
          md5: 'eb5a983be6a315427106f1b164d9cef3',
          bytes: 64275384,
          checksumSource: 'md5 as listed by torchvision',
        },
      ],
    },
  ],
  accepts: 'train_32x32.mat and test_32x32.mat (a folder holding both)',
  async build(inputs) {
    const read = async (e: InputEntry) => svhnSplit(await e.read(), e.path);
    const tr = need(inputs, /\/train_32x32\.mat$/, 'train_32x32.mat', 'svhn');
    const te = need(inputs, /\/test_32x32\.mat$/, 'test_32x32.mat', 'svhn');
    return {
      shape: [32, 32, 3],
      train: await read(tr),
      test: await read(te),
      variant: 'mat',
      conversion:
        'X (32x32x3xN, column-major) transposed to N x 32x32x3 HWC, file order; label = y - 1 (digit 0, stored as 10, becomes 9), as the reference.',
      used: [tr.path, te.path],
    };
  },
};

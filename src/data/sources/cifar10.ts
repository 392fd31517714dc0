/**
 * CIFAR-10 (spec §6.2 id 0) from the binary tarball (records: 1 label byte + 3072 bytes CHW) or the
 * python tarball (pickled dicts: 'data' N x 3072 CHW, 'labels'), or their extracted folders. Stored
 * 32x32x3 HWC, official order (data_batch_1..5, then test_batch).
 */
import { DataFileError } from '../idx';
import { type Inputs } from '../formats/archive';
import { arrayField, asUint8, unpickle, PickleError } from '../formats/pickle';
import { ADVICE_SOURCE, type Built, type BuiltSplit, type DatasetSource, chwToHwc, concatSplits } from './common';

/** Fixed-size CIFAR binary records: `labelBytes` label bytes (the last is used), then 3072 bytes CHW. */
export function cifarRecords(bytes: Uint8Array, labelBytes: number, file: string, expected?: number): BuiltSplit {
  const rec = labelBytes + 3072;
  if (bytes.length === 0 || bytes.length % rec !== 0)
    throw new DataFileError(
      file,
      `is ${bytes.length} bytes, not a whole number of ${rec}-byte CIFAR records (truncated?)`,
      ADVICE_SOURCE,
    );
  const n = bytes.length / rec;
  if (expected !== undefined && n !== expected)
    throw new DataFileError(file, `holds ${n} records, expected ${expected}`, ADVICE_SOURCE);
  const chw = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = bytes[i * rec + labelBytes - 1];
    chw.set(bytes.subarray(i * rec + labelBytes, (i + 1) * rec), i * 3072);
  }
  return { n, images: chwToHwc(chw, n, 3, 32, 32), labels };
}

/** A CIFAR python batch: dict with 'data' (N x 3072 uint8, CHW) and `labelKey`. */
export function cifarPickle(bytes: Uint8Array, labelKey: string, file: string): BuiltSplit {
  try {
    const d = unpickle(bytes);
    const data = arrayField(d, 'data', file);
    const labels = asUint8(arrayField(d, labelKey, file), `${file} ${labelKey}`);
    const n = labels.length;
    if (data.size !== n * 3072)
      throw new DataFileError(file, `'data' has ${data.size} values for ${n} labels`, ADVICE_SOURCE);
    return { n, images: chwToHwc(asUint8(data, `${file} data`), n, 3, 32, 32), labels: Uint8Array.from(labels) };
  } catch (e) {
    if (e instanceof PickleError) throw new DataFileError(file, e.message, ADVICE_SOURCE);
    throw e;
  }
}

const CONVERSION =
  'CHW records transposed to HWC (32x32x3), labels as stored, official order (training batches 1..5 concatenated).';

export async function buildCifar(inputs: Inputs, dataset: 'cifar10' | 'cifar100'): Promise<Built> {
  const ten = dataset === 'cifar10';
  const bin = ten
    ? {
        train: inputs.find(/\/cifar-10-batches-bin\/data_batch_[1-5]\.bin$/),
        test: inputs.find(/\/cifar-10-batches-bin\/test_batch\.bin$/),
      }
    : { train: inputs.find(/\/cifar-100-binary\/train\.bin$/), test: inputs.find(/\/cifar-100-binary\/test\.bin$/) };
  const py = ten
    ? {
        train: inputs.find(/\/cifar-10-batches-py\/data_batch_[1-5]$/),
        test: inputs.find(/\/cifar-10-batches-py\/test_batch$/),
      }
    : { train: inputs.find(/\/cifar-100-python\/train$/), test: inputs.find(/\/cifar-100-python\/test$/) };
  const nTrain = ten ? 5 : 1;
  const use =
    bin.train.length || bin.test.length
      ? { kind: 'binary', ...bin }
      : py.train.length || py.test.length
        ? { kind: 'python', ...py }
        : undefined;
  const folder = ten ? 'cifar-10-batches-bin/ (or -py/)' : 'cifar-100-binary/ (or cifar-100-python/)';
  if (!use)
    throw new DataFileError(
      dataset,
      `no ${folder} files among the inputs (${inputs.describe() || 'no files'})`,
      `Pass the CIFAR tarball (e.g. ${ten ? 'cifar-10-binary.tar.gz' : 'cifar-100-binary.tar.gz'}) or its extracted folder with --from.`,
    );
  if (use.train.length !== nTrain || use.test.length !== 1) {
    throw new DataFileError(
      dataset,
      `found ${use.train.length} training and ${use.test.length} test files in ${folder}, expected ${nTrain} and 1`,
      'The archive or folder is incomplete: download it again.',
    );
  }
  const read = async (e: (typeof use.train)[number]): Promise<BuiltSplit> => {
    const bytes = await e.read();
    return use.kind === 'binary'
      ? cifarRecords(bytes, ten ? 1 : 2, e.path)
      : cifarPickle(bytes, ten ? 'labels' : 'fine_labels', e.path);
  };
  const train: BuiltSplit[] = [];
  for (const e of use.train) train.push(await read(e));
  const test = await read(use.test[0]);
  return {
    shape: [32, 32, 3],
    train: concatSplits(train),
    test,
    variant: use.kind,
    conversion: ten
      ? CONVERSION
      : 'CHW records transposed to HWC (32x32x3), fine labels (0-99; the coarse label is dropped), official order.',
    used: [...use.train, ...use.test].map((e) => e.path),
  };
}

export const cifar10: DatasetSource = {
  name: 'cifar10',
  variants: [
    {
      id: 'binary',
      description: 'CIFAR-10, A. Krizhevsky 2009 (https://www.cs.toronto.edu/~kriz/cifar.html), binary version',
      files: [
        {
          name: 'cifar-10-binary.tar.gz',
          urls: ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'],
          md5: 'c32a1d4ab5d03f1284b67883e8d87530',
          bytes: 170052171,
          checksumSource: 'md5 published on the CIFAR page',
        },
      ],
    },
    {
      id: 'python',
      description: 'CIFAR-10, A. Krizhevsky 2009 (https://www.cs.toronto.edu/~kriz/cifar.html), python version',
      files: [
        {
          name: 'cifar-10-python.tar.gz',
          urls: ['https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'],
          md5: 'c58f30108f718f92721af3b95e74349a',
          checksumSource: 'md5 published on the CIFAR page',
        },
      ],
    },
  ],
  accepts:
    'cifar-10-binary.tar.gz or cifar-10-python.tar.gz, or the extracted cifar-10-batches-bin/ or cifar-10-batches-py/ folder',
  want: /cifar-10-batches-(bin|py)\//,
  build: (inputs) => buildCifar(inputs, 'cifar10'),
};

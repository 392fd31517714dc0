/** Archives made in memory for the tests (deterministic: every member's mtime is the epoch). */
import * as tarStream from 'tar-stream';
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

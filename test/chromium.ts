/** What the browser tests share: where Debian's chromium is, and where screenshots go. */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

export const ARTIFACTS = process.env.HAT_TEST_ARTIFACTS ?? path.join(__dirname, '..', 'res', 'test-artifacts');

/** $HAT_CHROMIUM, else chromium or chromium-browser on the PATH. */
export function findChromium(): string | undefined {
  if (process.env.HAT_CHROMIUM) return process.env.HAT_CHROMIUM;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      /* next */
    }
  }
  return undefined;
}

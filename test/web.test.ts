/**
 * The web page (web/): its picture-to-digit code against hand-computed values and MNIST itself; the example
 * models it ships (web/public/models, scripts/web-example.ts) against their metadata; then the page built with
 * vite, served by `vite preview` on 127.0.0.1 and opened in Debian's chromium (playwright-core): both task
 * models load, the mask grids show each task's open units, real MNIST test digits replayed as mouse strokes
 * on the pad are classified as their digit, on the cpu backend too a sample digit picked with the keyboard
 * and a dark-on-light image file; nothing is fetched from another origin. Screenshot:
 * res/test-artifacts/web.png (or $HAT_TEST_ARTIFACTS).
 * Outside CI the browser part is skipped when chromium is missing (bash scripts/setup-lab.sh --browser).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { loadImageSet } from '../src/data/datasets';
import type { ExportMetadata } from '../src/models/export';
import { WEB_MODELS_DIR, mnistSamples } from '../scripts/web-example';
import { boundingBox, mnistLike, resizeArea, toBytes } from '../web/src/digit';
import { INDEX_FORMAT, type WebModelIndex } from '../web/src/model-index';
import { ARTIFACTS, findChromium } from './chromium';

const ROOT = path.resolve(__dirname, '..');
const VITE = path.join(ROOT, 'node_modules', '.bin', 'vite');

const chromiumPath = findChromium();
if (!chromiumPath && process.env.CI) throw new Error('chromium missing in CI (bash scripts/setup-lab.sh --browser)');

const index = JSON.parse(fs.readFileSync(path.join(WEB_MODELS_DIR, 'index.json'), 'utf8')) as WebModelIndex;
const metadata = (p: string) =>
  (
    JSON.parse(fs.readFileSync(path.join(WEB_MODELS_DIR, p), 'utf8')) as {
      userDefinedMetadata: { hatTs: ExportMetadata };
    }
  ).userDefinedMetadata.hatTs;
const mnistTest = loadImageSet('mnist', 'test', []);
const mnistImage = (i: number) => mnistTest.images.subarray(i * 784, (i + 1) * 784);
const grey = (bytes: ArrayLike<number>, width: number, height: number) => ({
  width,
  height,
  channels: 1 as const,
  data: Float32Array.from(bytes, (v) => v / 255),
});

describe('web page: pictures to digits', () => {
  test('area averaging: whole blocks are their means, a 3 -> 2 resize weighs the middle pixel half to each side', () => {
    const img = grey([0, 255, 51, 102, 255, 255, 0, 0, 0], 3, 3); // 3x3
    const whole = { x: 0, y: 0, width: 3, height: 3 };
    const one = resizeArea(img, whole, 1, 1);
    assert.ok(Math.abs(one.data[0] - (0 + 1 + 0.2 + 0.4 + 1 + 1) / 9) < 1e-6);
    // 3 -> 2 along x on the first row only: [(1*0 + 0.5*1)/1.5, (0.5*1 + 1*0.2)/1.5]
    const row = resizeArea(img, { x: 0, y: 0, width: 3, height: 1 }, 2, 1);
    assert.ok(Math.abs(row.data[0] - 0.5 / 1.5) < 1e-6 && Math.abs(row.data[1] - 0.7 / 1.5) < 1e-6);
    // 280 -> 28: each output pixel is the mean of its 10x10 block
    const big = new Uint8Array(280 * 280);
    for (let y = 0; y < 280; y++) for (let x = 0; x < 280; x++) big[y * 280 + x] = (x * 7 + y * 13) % 256;
    const small = toBytes(resizeArea(grey(big, 280, 280), { x: 0, y: 0, width: 280, height: 280 }, 28, 28));
    for (const [ox, oy] of [
      [0, 0],
      [5, 17],
      [27, 27],
    ]) {
      let s = 0;
      for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) s += big[(oy * 10 + y) * 280 + ox * 10 + x];
      assert.equal(small[oy * 28 + ox], Math.round(s / 100));
    }
  });

  test('MNIST test digits placed as MNIST places them (20x20 box, centre of mass at pixel 14) come back unchanged', () => {
    for (let i = 0; i < 1000; i++) {
      const img = mnistImage(i);
      assert.deepEqual(toBytes(mnistLike(grey(img, 28, 28))!), new Uint8Array(img), `test image ${i}`);
    }
    // a drawing ten times as large comes down to the digit's 20x20 box, centred
    const big = new Uint8Array(280 * 280);
    for (let y = 50; y < 250; y++) for (let x = 130; x < 150; x++) big[y * 280 + x] = 255; // a "1"
    const one = mnistLike(grey(big, 280, 280))!;
    // its centre of mass at index 14.5 (columns 14-15, rows 5-24: .5 rounds up)
    assert.deepEqual(boundingBox(one), { x: 14, y: 5, width: 2, height: 20 });
  });

  test('the shipped example: an index of both mnist2 tasks, their metadata and the MNIST samples', () => {
    assert.equal(index.format, INDEX_FORMAT);
    assert.deepEqual(
      index.models.map((m) => [m.name, m.task]),
      [
        ['mnist2-task1', 'MNIST 0-4'],
        ['mnist2-task2', 'MNIST 5-9'],
      ],
    );
    let bytes = 0;
    for (const m of index.models) {
      const meta = metadata(m.path);
      assert.deepEqual(meta.task.classNames, m.classNames);
      assert.deepEqual(meta.units, m.units);
      assert.deepEqual(
        meta.masks.map((k) => k.open.length),
        m.units.map((u) => u.kept),
      );
      assert.ok(m.accuracy.exported > 0.95, `${m.name}: ${m.accuracy.exported}`);
      assert.equal(m.accuracy.exported, m.accuracy.model);
      const dir = path.join(WEB_MODELS_DIR, m.name);
      bytes += fs.statSync(path.join(dir, 'model.json')).size + fs.statSync(path.join(dir, 'weights.bin')).size;
    }
    assert.ok(bytes < 600_000, `the example's exports are small (${bytes} bytes)`);
    const samples = JSON.parse(fs.readFileSync(path.join(WEB_MODELS_DIR, 'samples.json'), 'utf8')) as unknown;
    assert.deepEqual(samples, mnistSamples());
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const launchArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/** Replays the bright pixels (> 127) of a 28x28 image as horizontal mouse strokes on the 280x280 pad. */
async function drawDigit(page: Page, img: ArrayLike<number>): Promise<void> {
  await page.click('#clear');
  const box = (await page.locator('#pad').boundingBox())!;
  const scale = box.width / 28;
  const at = (x: number, y: number) => [box.x + (x + 0.5) * scale, box.y + (y + 0.5) * scale] as const;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      if (img[y * 28 + x] <= 127 || (x > 0 && img[y * 28 + x - 1] > 127)) continue;
      let end = x;
      while (end + 1 < 28 && img[y * 28 + end + 1] > 127) end++;
      await page.mouse.move(...at(x, y));
      await page.mouse.down();
      await page.mouse.move(...at(end, y), { steps: Math.max(1, end - x) });
      await page.mouse.up();
    }
  }
}

async function waitReady(page: Page): Promise<void> {
  await page.waitForSelector('#status:not([data-state="loading"])', { timeout: 30_000 });
  const status = page.locator('#status');
  assert.equal(await status.getAttribute('data-state'), 'ready', (await status.textContent()) ?? '');
}

describe(
  'web page in a browser',
  { skip: chromiumPath ? false : 'chromium not available (bash scripts/setup-lab.sh --browser)' },
  () => {
    let tmp = '';
    let server: ChildProcess | undefined;
    let serverLog = '';
    let browser: Browser | undefined;
    let origin = '';

    before(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-web-'));
      const dist = path.join(tmp, 'dist');
      const build = spawnSync(VITE, ['build', 'web', '--outDir', dist, '--emptyOutDir', '--logLevel', 'warn'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(build.status, 0, `vite build failed:\n${build.stdout}\n${build.stderr}`);
      const port = await freePort();
      origin = `http://127.0.0.1:${port}`;
      server = spawn(
        VITE,
        ['preview', 'web', '--outDir', dist, '--host', '127.0.0.1', '--port', String(port), '--strictPort'],
        {
          cwd: ROOT,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      server.stdout?.on('data', (d: Buffer) => (serverLog += d.toString()));
      server.stderr?.on('data', (d: Buffer) => (serverLog += d.toString()));
      const until = Date.now() + 30_000;
      for (;;) {
        if (server.exitCode !== null) throw new Error(`vite preview exited (${server.exitCode}):\n${serverLog}`);
        try {
          if ((await fetch(`${origin}/models/index.json`)).ok) break;
        } catch {
          /* not yet */
        }
        if (Date.now() > until) throw new Error(`vite preview did not answer on ${origin}:\n${serverLog}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: launchArgs });
    });

    after(async () => {
      await browser?.close();
      if (server?.pid && server.exitCode === null) {
        try {
          process.kill(-server.pid, 'SIGTERM'); // vite preview's own process group
        } catch {
          /* gone */
        }
      }
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('loads both task models, draws their masks, and classifies real MNIST digits drawn with the mouse', async () => {
      const page = await browser!.newPage({ viewport: { width: 1200, height: 1100 } });
      const foreign: string[] = [];
      const errors: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(`${origin}/`) && !r.url().startsWith('data:') && !r.url().startsWith('blob:'))
          foreign.push(r.url());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      try {
        await page.goto(`${origin}/`);
        await waitReady(page);
        assert.deepEqual(
          await page.locator('#task option').allTextContents(),
          index.models.map((m, i) => `Task ${i + 1}: ${m.task} (${m.classNames.join(', ')})`),
        );

        // the mask grids: one cell per unit, each task's open units exactly the metadata's
        // (the tests compile without the DOM's types: the few members used, typed here)
        type El = { dataset: Record<string, string | undefined>; querySelectorAll(s: string): ArrayLike<El> };
        const grids = await page.evaluate(() =>
          Array.from((globalThis as unknown as { document: El }).document.querySelectorAll('#masks .layer')).map(
            (layer) => ({
              layer: layer.dataset.layer!,
              cells: Array.from(layer.querySelectorAll('.cell')).map((c) => ({
                unit: Number(c.dataset.unit),
                tasks: (c.dataset.tasks ?? '').split(' ').filter(Boolean).map(Number),
              })),
            }),
          ),
        );
        const metas = index.models.map((m) => metadata(m.path));
        assert.deepEqual(
          grids.map((g) => [g.layer, g.cells.length]),
          metas[0].masks.map((m) => [m.layer, m.units]),
        );
        metas.forEach((meta, t) =>
          meta.masks.forEach((m, l) => {
            const open = grids[l].cells.filter((c) => c.tasks.includes(t + 1)).map((c) => c.unit);
            assert.deepEqual(open, m.open, `task ${t + 1}, layer ${m.layer}: the filled cells are its open units`);
          }),
        );
        const filled = await page.locator('#masks .cell.open').count();
        const union = metas[0].masks.reduce((n, m, l) => n + new Set(metas.flatMap((x) => x.masks[l].open)).size, 0);
        assert.equal(filled, union);

        // a vertical stroke is a 1 (task 1)
        await page.selectOption('#task', '0');
        await page.click('#clear');
        const pad = (await page.locator('#pad').boundingBox())!;
        await page.mouse.move(pad.x + 140, pad.y + 50);
        await page.mouse.down();
        await page.mouse.move(pad.x + 142, pad.y + 240, { steps: 12 });
        await page.mouse.up();
        await page.waitForSelector('#prediction[data-state="done"]');
        assert.equal(await page.locator('#prediction').getAttribute('data-name'), '1');

        // the first MNIST test image of each task, its bright pixels replayed as strokes, read by the task's head
        for (const [t, m] of index.models.entries()) {
          await page.selectOption('#task', String(t));
          const row = mnistTest.labels.findIndex((l) => m.classNames.includes(String(l)));
          await drawDigit(page, mnistImage(row));
          await page.waitForSelector('#prediction[data-state="done"]');
          const got = await page.locator('#prediction').getAttribute('data-name');
          assert.equal(got, String(mnistTest.labels[row]), `test image ${row} on ${m.task}`);
        }
        assert.equal(await page.locator('#top3 li').count(), 3);
        await page.screenshot({ path: path.join(ARTIFACTS, 'web.png'), fullPage: true });
        assert.deepEqual(errors, [], 'no page errors');
        assert.deepEqual(foreign, [], 'nothing fetched from another origin');
      } catch (e) {
        await page.screenshot({ path: path.join(ARTIFACTS, 'web-failure.png'), fullPage: true }).catch(() => undefined);
        throw e;
      } finally {
        await page.close();
      }
    });

    test('on the cpu backend, an MNIST sample digit chosen with the keyboard and an image file are classified', async () => {
      const page = await browser!.newPage({ viewport: { width: 1200, height: 1000 } });
      try {
        await page.goto(`${origin}/?backend=cpu`);
        await waitReady(page);
        assert.equal(await page.locator('#backend').textContent(), 'cpu');
        await page.focus('#task');
        await page.keyboard.press('ArrowDown'); // task 2: digits 5-9
        assert.equal(await page.locator('#task').inputValue(), '1');
        await page.locator('#samples button', { hasText: '7' }).focus();
        await page.keyboard.press('Enter');
        await page.waitForSelector('#prediction[data-state="done"]');
        assert.equal(await page.locator('#prediction').getAttribute('data-name'), '7');
        // an image file of a dark digit on white (the page inverts it), 4 times MNIST's size
        const row = mnistTest.labels.findIndex((l) => l === 9);
        const png = new PNG({ width: 112, height: 112 });
        for (let y = 0; y < 112; y++)
          for (let x = 0; x < 112; x++) {
            const v = 255 - mnistImage(row)[Math.floor(y / 4) * 28 + Math.floor(x / 4)];
            png.data.set([v, v, v, 255], 4 * (y * 112 + x));
          }
        await page.click('#clear');
        await page.setInputFiles('#file', { name: 'nine.png', mimeType: 'image/png', buffer: PNG.sync.write(png) });
        await page.waitForSelector('#prediction[data-state="done"]');
        assert.equal(await page.locator('#prediction').getAttribute('data-name'), '9', `test image ${row} as a file`);
        assert.equal(
          await page.locator('#masks .layer[data-layer] .cell.selected').count(),
          index.models[1].units.reduce((n, u) => n + u.kept, 0),
        );
      } finally {
        await page.close();
      }
    });
  },
);

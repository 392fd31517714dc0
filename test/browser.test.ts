/**
 * A real browser on the notebooks: JupyterLab from the project's environment on 127.0.0.1, a notebook
 * opened in Debian's chromium driven by playwright-core, all cells run in the tslab kernel; a Plotly chart
 * (its SVG) and a results table must appear, with no error output. The same check on the notebook's
 * nbconvert HTML report opened from disk (offline). Screenshots go to res/test-artifacts/ (or
 * $HAT_TEST_ARTIFACTS). Needs scripts/setup-lab.sh --browser (npm test runs it; outside CI the suite is
 * skipped when chromium or the environment is missing).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { makeNotebookFixtures } from '../scripts/notebook-fixtures';
import { ARTIFACTS, findChromium } from './chromium';

const ROOT = path.resolve(__dirname, '..');
const LAB_ENV = process.env.HAT_LAB_ENV ?? path.join(ROOT, '.venv-lab');
const NOTEBOOK = '02-forgetting.ipynb';

const chromiumPath = findChromium();
const labReady = fs.existsSync(path.join(LAB_ENV, '.hat-lab-stamp'));
const missing = [!labReady && `the notebook environment ${LAB_ENV}`, !chromiumPath && 'chromium']
  .filter(Boolean)
  .join(' and ');
if (missing && process.env.CI) throw new Error(`${missing} missing in CI (bash scripts/setup-lab.sh --browser)`);

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

async function waitForServer(url: string, proc: ChildProcess, log: () => string, seconds = 90): Promise<void> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`jupyter lab exited (${proc.exitCode}):\n${log()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`jupyter lab did not answer ${url} within ${seconds} s:\n${log()}`);
}

const launchArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--no-first-run',
];

async function assertChartAndTable(page: Page, scope: string, timeout: number): Promise<void> {
  const svg = page.locator(`${scope} .js-plotly-plot .main-svg`).first();
  await svg.waitFor({ state: 'attached', timeout });
  const traces = await page.locator(`${scope} .js-plotly-plot .scatterlayer .trace`).count();
  assert.ok(traces > 0, 'the Plotly chart has drawn traces');
  const table = page.locator(`${scope} .hat-table table`).first();
  await table.waitFor({ state: 'attached', timeout });
  const cells = await page.locator(`${scope} .hat-table table td`).count();
  assert.ok(cells > 10, `a results table with cells (${cells})`);
}

describe(
  'browser',
  { skip: missing ? `${missing} not available (bash scripts/setup-lab.sh --browser)` : false },
  () => {
    let tmp = '';
    let fixtures = '';
    let browser: Browser | undefined;
    let lab: ChildProcess | undefined;
    let labLog = '';

    before(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-browser-'));
      fixtures = path.join(tmp, 'res');
      await makeNotebookFixtures(fixtures);
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      for (const f of fs.readdirSync(ARTIFACTS)) if (f.endsWith('-failure.png')) fs.rmSync(path.join(ARTIFACTS, f));
      browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: launchArgs });
    });

    after(async () => {
      await browser?.close();
      if (lab?.pid && lab.exitCode === null) {
        try {
          process.kill(-lab.pid, 'SIGTERM'); // the server and the kernels it started (its own process group)
        } catch {
          /* gone */
        }
      }
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('JupyterLab runs a notebook in the tslab kernel and shows a Plotly chart and a results table', async () => {
      // a work folder with a copy of the notebook (JupyterLab may autosave it)
      const work = path.join(tmp, 'lab');
      fs.mkdirSync(work);
      fs.copyFileSync(path.join(ROOT, 'notebooks', NOTEBOOK), path.join(work, NOTEBOOK));
      // the links notebooks/ has, and node_modules: tslab resolves packages from the (linked) source paths
      for (const link of ['src', 'package.json', 'node_modules'])
        fs.symlinkSync(path.join(ROOT, link), path.join(work, link));
      const port = await freePort();
      const token = crypto.randomBytes(16).toString('hex');
      const env = {
        ...process.env,
        HAT_RES_DIR: fixtures,
        JUPYTER_PATH: path.join(LAB_ENV, 'share', 'jupyter'),
        JUPYTER_CONFIG_DIR: path.join(tmp, 'jupyter-config'),
        JUPYTER_RUNTIME_DIR: path.join(tmp, 'jupyter-runtime'),
        PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}`,
      };
      lab = spawn(
        path.join(LAB_ENV, 'bin', 'jupyter'),
        [
          'lab',
          '--no-browser',
          '--ip=127.0.0.1',
          `--port=${port}`,
          `--IdentityProvider.token=${token}`,
          `--ServerApp.root_dir=${work}`,
          '--LabApp.expose_app_in_browser=True',
          '--ServerApp.open_browser=False',
          ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
        ],
        { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      lab.stdout?.on('data', (d: Buffer) => (labLog += d.toString()));
      lab.stderr?.on('data', (d: Buffer) => (labLog += d.toString()));
      await waitForServer(`http://127.0.0.1:${port}/api/status?token=${token}`, lab, () => labLog);

      const page = await browser!.newPage({ viewport: { width: 1400, height: 1000 } });
      try {
        await page.goto(`http://127.0.0.1:${port}/lab/tree/${NOTEBOOK}?token=${token}`, { timeout: 90_000 });
        await page.waitForSelector('.jp-Notebook .jp-Cell', { timeout: 90_000 });
        type App = {
          commands: { execute(id: string): Promise<unknown> };
          shell: {
            currentWidget: { sessionContext?: { session?: { kernel?: { status: string; name: string } } } } | null;
          };
        };
        await page.waitForFunction(
          () => {
            const app = (globalThis as unknown as { jupyterapp?: App }).jupyterapp;
            return app?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle';
          },
          undefined,
          { timeout: 90_000 },
        );
        const kernel = await page.evaluate(
          () =>
            (globalThis as unknown as { jupyterapp: App }).jupyterapp.shell.currentWidget?.sessionContext?.session
              ?.kernel?.name,
        );
        assert.equal(kernel, 'tslab');
        await page.evaluate(() =>
          (globalThis as unknown as { jupyterapp: App }).jupyterapp.commands.execute('notebook:run-all-cells'),
        );
        await assertChartAndTable(page, '.jp-Notebook', 180_000);
        // wait until no cell is queued or running, then check for errors
        await page.waitForFunction(
          () =>
            !Array.from(
              (
                globalThis as unknown as {
                  document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> };
                }
              ).document.querySelectorAll('.jp-InputPrompt'),
            ).some((p) => p.textContent?.includes('*')),
          undefined,
          { timeout: 180_000 },
        );
        const errors = await page
          .locator(
            '.jp-Notebook [data-mime-type="application/vnd.jupyter.stderr"], .jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]',
          )
          .allTextContents();
        assert.deepEqual(errors, [], 'no error or stderr output');
        const figures = await page.locator('.jp-Notebook .js-plotly-plot').count();
        assert.ok(figures >= 1);
        await page.locator('.jp-Notebook .js-plotly-plot').first().scrollIntoViewIfNeeded();
        await page.screenshot({ path: path.join(ARTIFACTS, 'jupyterlab-02-forgetting.png') });
      } catch (e) {
        await page
          .screenshot({ path: path.join(ARTIFACTS, 'jupyterlab-02-forgetting-failure.png') })
          .catch(() => undefined);
        throw new Error(`${(e as Error).message}\n--- jupyter lab log (tail) ---\n${labLog.slice(-3000)}`);
      } finally {
        await page.close();
      }
    });

    test('the nbconvert HTML report of the notebook shows the same chart and table offline', async () => {
      const out = path.join(tmp, 'report');
      const r = spawnSync(
        path.join(LAB_ENV, 'bin', 'python'),
        [
          path.join(ROOT, 'scripts', 'report.py'),
          '--res-dir',
          fixtures,
          '--out',
          out,
          path.join(ROOT, 'notebooks', NOTEBOOK),
        ],
        {
          cwd: ROOT,
          encoding: 'utf8',
          timeout: 10 * 60 * 1000,
          env: {
            ...process.env,
            PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}`,
            JUPYTER_PATH: path.join(LAB_ENV, 'share', 'jupyter'),
          },
        },
      );
      assert.equal(r.status, 0, r.stderr);
      const context = await browser!.newContext({ viewport: { width: 1400, height: 1000 }, offline: true });
      const page = await context.newPage();
      const requests: string[] = [];
      page.on('request', (req) => {
        if (!req.url().startsWith('file:') && !req.url().startsWith('data:')) requests.push(req.url());
      });
      try {
        await page.goto(`file://${path.join(out, NOTEBOOK.replace('.ipynb', '.html'))}`, { timeout: 60_000 });
        await assertChartAndTable(page, 'body', 60_000);
        await page.locator('.js-plotly-plot').first().scrollIntoViewIfNeeded();
        await page.screenshot({ path: path.join(ARTIFACTS, 'report-02-forgetting.png') });
        assert.deepEqual(requests, [], 'the report fetches nothing from the network');
      } finally {
        await context.close();
      }
    });
  },
);

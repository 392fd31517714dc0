/**
 * The notebooks, executed headless in the tslab kernel on small results (scripts/notebook-fixtures.ts) by
 * the report runner (scripts/report.py): every cell must run, every notebook must show a Plotly figure and
 * an HTML table, the HTML reports must be self-contained (plotly inlined, nothing from a CDN), a missing
 * result set must trigger the announced live fallback, and a failing cell must stop the report with its
 * own error. Needs the notebook environment of scripts/setup-lab.sh (npm test prepares it; outside CI the
 * suite is skipped when it could not be installed).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeNotebookFixtures } from '../scripts/notebook-fixtures';
import { gradientAnnealingCurves, reuseMatrix, stat, sigmoidPrime, usagePerTaskRows } from '../src/figures';
import { decodeGates, encodeGates } from '../src/analysis/usage';
import { figureHtml } from '../src/notebook';
import { type LayerSpec } from '../src/nets/geometry';

export const ROOT = path.resolve(__dirname, '..');
export const LAB_ENV = process.env.HAT_LAB_ENV ?? path.join(ROOT, '.venv-lab');
const python = path.join(LAB_ENV, 'bin', 'python');
const ready = fs.existsSync(path.join(LAB_ENV, '.hat-lab-stamp')) && fs.existsSync(python);
if (!ready && process.env.CI)
  throw new Error(`the notebook environment ${LAB_ENV} is missing in CI (bash scripts/setup-lab.sh)`);

const NOTEBOOKS = fs
  .readdirSync(path.join(ROOT, 'notebooks'))
  .filter((f) => /^\d.*\.ipynb$/.test(f))
  .sort();

function report(args: string[], extraEnv: Record<string, string> = {}) {
  return spawnSync(python, [path.join(ROOT, 'scripts', 'report.py'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20 * 60 * 1000,
    env: {
      ...process.env,
      PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}`,
      JUPYTER_PATH: path.join(LAB_ENV, 'share', 'jupyter'),
      ...extraEnv,
    },
  });
}

interface NbOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
}
interface Nb {
  cells: { cell_type: string; source: string | string[]; outputs?: NbOutput[] }[];
}
const joined = (s: string | string[] | undefined): string => (Array.isArray(s) ? s.join('') : (s ?? ''));

describe('figure and table helpers', () => {
  const layers: LayerSpec[] = [
    { name: 'fc1', kind: 'dense', inputs: 3, units: 4, dropout: 0, pool: false },
    { name: 'fc2', kind: 'dense', inputs: 4, units: 2, dropout: 0, pool: false },
  ];
  const gates = [
    [
      [0.9, 0.8, 0.1, 0],
      [1, 0],
    ],
    [
      [1, 0.2, 0.7, 0],
      [0.6, 0.9],
    ],
  ];

  test('weight reuse counts the weights both tasks use, relative to the earlier task (Fig. 6)', () => {
    // task 1: fc1 2 units x 3 inputs + fc2 1 unit x 2 inputs = 8 weights; shared: fc1 1 x 3 + fc2 1 x 1 = 4
    const m = reuseMatrix(layers, gates);
    assert.equal(m[0][1], 50);
    assert.equal(m[1][0], null);
    assert.equal(m[0][0], null);
  });

  test('capacity table: cumulative usage per layer after each task', () => {
    const rows = usagePerTaskRows(layers, gates, ['a', 'b']);
    assert.equal(rows[0]['fc1 %'], 50); // 2 of 4 units x 3 inputs
    assert.equal(rows[1]['fc1 %'], 75); // units 0, 1, 2
    assert.equal(rows[1]['fc2 %'], 75); // 2 units x 3 active inputs of 4
  });

  test('Fig. 2 curves: s = smax is narrow, compensation is wide and as high as s = smax at 0', () => {
    const c = gradientAnnealingCurves(6, 100);
    const zero = c.e.findIndex((e) => Math.abs(e) < 1e-9);
    const two = c.e.findIndex((e) => Math.abs(e - 2) < 1e-9);
    assert.ok(Math.abs(c.constantOne[zero] - 25) < 1e-9);
    assert.ok(Math.abs(c.constantSmax[zero] - 150) < 1e-9);
    assert.ok(Math.abs(c.compensated[two] - 600 * sigmoidPrime(2)) < 1e-9);
    assert.ok(c.constantSmax[two] < c.constantOne[two] / 10, 'narrow');
    assert.ok(c.annealed[zero] > c.constantOne[zero] && c.annealed[zero] < c.constantSmax[zero]);
  });

  test('statistics: t-based 95% confidence interval', () => {
    const s = stat([1, 2, 3]);
    assert.equal(s.mean, 2);
    assert.equal(s.std, 1);
    assert.ok(Math.abs(s.ci - 4.303 / Math.sqrt(3)) < 1e-9);
    assert.equal(stat([5]).ci, 0);
  });

  test('gate logs round-trip through their byte encoding within 1/510', () => {
    const g = [0, 0.25, 0.5, 0.999, 1];
    decodeGates(encodeGates(g)).forEach((v, i) => assert.ok(Math.abs(v - g[i]) <= 1 / 510 + 1e-12));
  });

  test('figure html: non-finite numbers become null and no script end tag leaks from the data', () => {
    const html = figureHtml(
      { data: [{ type: 'scatter', x: [1, 2], y: [NaN, Infinity], name: '</script><b>' }], layout: {} },
      'fig-x',
    );
    assert.match(html, /"y":\[null,null\]/);
    assert.equal(html.match(/<\/script>/g)?.length, 1);
  });
});

describe(
  'notebooks',
  { skip: ready ? false : `no notebook environment in ${LAB_ENV} (run bash scripts/setup-lab.sh)` },
  () => {
    let tmp = '';
    let fixtures = '';
    before(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-notebooks-'));
      fixtures = path.join(tmp, 'res');
      await makeNotebookFixtures(fixtures);
    });
    after(() => {
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('every notebook runs top to bottom on small results and becomes a self-contained HTML report', () => {
      const out = path.join(tmp, 'report');
      const r = report(['--res-dir', fixtures, '--out', out]);
      assert.equal(r.status, 0, `report failed:\n${r.stderr}`);
      assert.ok(NOTEBOOKS.length >= 6, `expected the six notebooks, found ${NOTEBOOKS.join(', ')}`);
      const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
      for (const file of NOTEBOOKS) {
        const stem = file.replace(/\.ipynb$/, '');
        assert.match(index, new RegExp(`href="${stem}\\.html"`), `index links ${stem}`);
        const nb = JSON.parse(fs.readFileSync(path.join(out, file), 'utf8')) as Nb;
        const outputs = nb.cells.flatMap((c) => c.outputs ?? []);
        assert.deepEqual(
          outputs.filter((o) => o.output_type === 'error'),
          [],
          `${file}: error outputs`,
        );
        const stderr = outputs
          .filter((o) => o.output_type === 'stream' && o.name === 'stderr')
          .map((o) => joined(o.text));
        assert.deepEqual(stderr, [], `${file}: nothing on stderr`);
        const html = outputs.map((o) => joined(o.data?.['text/html'])).join('\n');
        assert.match(html, /class="hat-figure"/, `${file}: a Plotly figure`);
        assert.match(html, /<table/, `${file}: an HTML table`);
        // notebooks 00 and 01 train live by design; the others must have used the fixtures, not a fallback
        if (!/^0[01]/.test(file))
          assert.doesNotMatch(html, /hat-fallback/, `${file} should use the results in ${fixtures}`);
        const page = fs.readFileSync(path.join(out, `${stem}.html`), 'utf8');
        assert.match(page, /window\.Plotly = Plotly/, `${stem}.html inlines plotly.js`);
        assert.doesNotMatch(page, /<script[^>]+src="https?:/, `${stem}.html loads no script from the network`);
      }
    });

    test('the forgetting notebook reads the fixture family: table with the paper column and HAT and SGD rows', () => {
      const out = path.join(tmp, 'report');
      const nb = JSON.parse(fs.readFileSync(path.join(out, '02-forgetting.ipynb'), 'utf8')) as Nb;
      const html = nb.cells
        .flatMap((c) => c.outputs ?? [])
        .map((o) => joined(o.data?.['text/html']) + joined(o.data?.['text/markdown']))
        .join('\n');
      assert.match(html, /Table 1: mean \(std\) over seeds; ours: pmnist, 3 tasks; seeds 0,1/);
      assert.match(html, /paper rho&lt;=8|paper rho<=8/);
      assert.match(
        html,
        /Using \*\*24 result files\*\*/,
        'two seeds of the 10 approaches of Table 1 and the 2 references',
      );
      for (const label of ['LFL', 'LWF', 'EWC', 'IMM-MODE', 'PATHNET', 'PNN'])
        assert.match(html, new RegExp(`<td[^>]*>${label}</td>`), `Table 1 has a measured ${label} row`);
    });

    test('a notebook without results runs a small live experiment instead and says so', () => {
      const empty = path.join(tmp, 'empty');
      fs.mkdirSync(empty);
      const out = path.join(tmp, 'report-empty');
      const r = report(['--res-dir', empty, '--out', out, path.join(ROOT, 'notebooks', '03-robustness.ipynb')]);
      assert.equal(r.status, 0, `report failed:\n${r.stderr}`);
      const nb = JSON.parse(fs.readFileSync(path.join(out, '03-robustness.ipynb'), 'utf8')) as Nb;
      const html = nb.cells
        .flatMap((c) => c.outputs ?? [])
        .map((o) => joined(o.data?.['text/html']))
        .join('\n');
      assert.match(html, /class="hat-fallback"/);
      assert.match(html, /class="hat-figure"/);
      const written = fs
        .readdirSync(path.join(empty, 'notebook-runs', '03-robustness'))
        .filter((f) => f.endsWith('.json') && !f.includes('ckpt'));
      assert.equal(written.length, 11, `random, joint and 9 HAT settings: ${written.join(', ')}`);
    });

    test("a failing cell stops the report with that cell's own error message", () => {
      const dir = path.join(tmp, 'failing');
      fs.mkdirSync(dir);
      for (const link of ['src', 'package.json']) fs.symlinkSync(path.join(ROOT, link), path.join(dir, link));
      const cells = [
        { cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: 'const fine = 1 + 1;' },
        {
          cell_type: 'code',
          execution_count: null,
          metadata: {},
          outputs: [],
          source: 'throw new Error("boom from the second cell");',
        },
        { cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: 'const never = 3;' },
      ];
      const nb = {
        cells,
        metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
        nbformat: 4,
        nbformat_minor: 5,
      };
      fs.writeFileSync(path.join(dir, '9-failing.ipynb'), JSON.stringify(nb));
      const r = report(['--out', path.join(tmp, 'report-failing'), path.join(dir, '9-failing.ipynb')]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /9-failing\.ipynb: cell 2 failed/);
      assert.match(r.stderr, /boom from the second cell/);

      // a type error is reported by tslab on stderr, which the runner shows too
      cells[1].source = 'const wrong: number = "text";';
      fs.writeFileSync(path.join(dir, '9-failing.ipynb'), JSON.stringify(nb));
      const r2 = report(['--out', path.join(tmp, 'report-failing'), path.join(dir, '9-failing.ipynb')]);
      assert.equal(r2.status, 1);
      assert.match(r2.stderr, /cell 2 failed/);
      assert.match(r2.stderr, /Type 'string' is not assignable to type 'number'/);
    });
  },
);

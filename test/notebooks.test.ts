/**
 * The notebooks, executed headless in the tslab kernel by the report runner (scripts/report.py): on the
 * committed lite reproduction (res/reference/lite) every cell must run with nothing on stderr and no fallback,
 * each figure's named rows and traces must be there (e.g. HAT's Table 1 row over every lite seed), the reports
 * must share one plotly.js beside them, stay well under 1 MB and load nothing from the network, and the index
 * must say which results each used; on a user's own results (scripts/notebook-fixtures.ts) those are drawn
 * instead; a failing cell stops the report with its own error. Needs the notebook environment of
 * scripts/setup-lab.sh (npm test prepares it; outside CI the notebook runs are skipped when it could not be
 * installed). Where the results come from (notebookResults) is checked without a kernel.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { makeNotebookFixtures } from '../scripts/notebook-fixtures';
import { REFERENCE_RESULTS, notebookResults } from '../src/notebook';
import { UserError } from '../src/core/errors';
import type { RunResult } from '../src/runs/result-file';

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
/** The notebooks that draw result files (00 and 01 train live by design). */
const FROM_RESULTS = NOTEBOOKS.filter((f) => !/^0[01]/.test(f));

/** The committed lite results, read directly (not through src/): what the notebooks must show. */
const LITE = path.join(ROOT, REFERENCE_RESULTS);
const liteRuns = (): RunResult[] =>
  fs
    .readdirSync(LITE)
    .filter((f) => f.endsWith('.json') && !f.endsWith('.ckpt.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(LITE, f), 'utf8')) as RunResult)
    .filter((r) => r.status === 'complete');

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
const outputsOf = (file: string): NbOutput[] =>
  (JSON.parse(fs.readFileSync(file, 'utf8')) as Nb).cells.flatMap((c) => c.outputs ?? []);
/** Everything a notebook showed: html and markdown outputs. */
const shown = (file: string): string =>
  outputsOf(file)
    .map((o) => joined(o.data?.['text/html']) + joined(o.data?.['text/markdown']))
    .join('\n');
const td = (s: string | number) => `<td[^>]*>${String(s).replace(/[()+.]/g, '\\$&')}</td>`;

describe("where a notebook's results come from", () => {
  let tmp = '';
  before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-nbresults-'))));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const any = (rs: RunResult[]) => rs.length > 0;
  const need = { what: 'Fig. 4', protocol: 'robustness' };

  test("the user's own results when usable, else the committed lite results; nothing anywhere names the command", () => {
    const own = path.join(tmp, 'res');
    fs.mkdirSync(path.join(own, 'reference'), { recursive: true });
    const ctx = { root: ROOT, resDir: own, runDir: path.join(own, 'notebook-runs', 'x') };
    const lite = liteRuns();
    const reference = notebookResults(ctx, any, need);
    assert.equal(reference.kind, 'reference');
    assert.equal(reference.runs.length, lite.length);
    const one = fs.readdirSync(LITE).find((f) => f.endsWith('.json') && !f.endsWith('.ckpt.json'))!;
    fs.copyFileSync(path.join(LITE, one), path.join(own, one));
    // a copy inside the results folder's own reference/ folder is not the user's
    fs.copyFileSync(path.join(LITE, one), path.join(own, 'reference', one));
    const yours = notebookResults(ctx, any, need);
    assert.equal(yours.kind, 'yours');
    assert.equal(yours.runs.length, 1);
    const nowhere = { root: tmp, resDir: path.join(tmp, 'empty'), runDir: '' };
    assert.throws(
      () => notebookResults(nowhere, () => false, need),
      (e: unknown) =>
        e instanceof UserError &&
        /no results for Fig\. 4 in .*empty nor in the committed res\/reference\/lite: run `hat grid --protocol robustness --scale lite`/.test(
          e.message,
        ),
    );
  });
});

describe(
  'notebooks',
  { skip: ready ? false : `no notebook environment in ${LAB_ENV} (run bash scripts/setup-lab.sh)` },
  () => {
    let tmp = '';
    before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hat-notebooks-'))));
    after(() => {
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('every notebook runs on the committed lite results into reports sharing one plotly.js', () => {
      const out = path.join(tmp, 'report');
      const empty = path.join(tmp, 'no-results');
      fs.mkdirSync(empty);
      const r = report(['--res-dir', empty, '--out', out]);
      assert.equal(r.status, 0, `report failed:\n${r.stderr}`);
      assert.ok(NOTEBOOKS.length >= 6, `expected the six notebooks, found ${NOTEBOOKS.join(', ')}`);
      assert.ok(fs.existsSync(path.join(out, 'plotly.min.js')), 'one plotly.js beside the reports');
      const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
      for (const file of NOTEBOOKS) {
        const stem = file.replace(/\.ipynb$/, '');
        assert.match(index, new RegExp(`href="${stem}\\.html"`), `index links ${stem}`);
        const outputs = outputsOf(path.join(out, file));
        assert.deepEqual(
          outputs.filter((o) => o.output_type === 'error'),
          [],
          `${file}: error outputs`,
        );
        const stderr = outputs
          .filter((o) => o.output_type === 'stream' && o.name === 'stderr')
          .map((o) => joined(o.text));
        assert.deepEqual(stderr, [], `${file}: nothing on stderr`);
        const html = shown(path.join(out, file));
        assert.match(html, /class="hat-figure"/, `${file}: a Plotly figure`);
        assert.match(html, /<table/, `${file}: an HTML table`);
        assert.doesNotMatch(html, /hat-fallback|[Ff]allback:/, `${file}: no fallback`);
        if (FROM_RESULTS.includes(file)) assert.match(html, /\*\*Results: the committed lite reproduction\*\*/, file);
        const page = fs.readFileSync(path.join(out, `${stem}.html`), 'utf8');
        // nbconvert may reorder the tag's attributes
        assert.match(page, /<script(?=[^>]*\ssrc="plotly\.min\.js")[^>]*><\/script>/, `${stem}.html`);
        assert.doesNotMatch(
          page,
          /window\.Plotly = Plotly|inlined by hat-ts/,
          `${stem}.html does not inline plotly.js`,
        );
        assert.doesNotMatch(page, /<script[^>]+src="https?:/, `${stem}.html loads no script from the network`);
        assert.ok(page.length < 1_000_000, `${stem}.html is ${page.length} bytes`);
      }
      for (const file of FROM_RESULTS)
        assert.match(
          index,
          new RegExp(`${file.replace(/\.ipynb$/, '')}.*\\n?.*results: the committed lite reproduction`),
          `index says which results ${file} used`,
        );
      const timings = JSON.parse(fs.readFileSync(path.join(out, 'timings.json'), 'utf8')) as {
        notebooks: { name: string; seconds: number }[];
      };
      process.stderr.write(
        `notebook report times: ${timings.notebooks.map((n) => `${n.name} ${n.seconds.toFixed(0)} s`).join(', ')}\n`,
      );
    });

    test("the lite Table 1, Fig. 3 and the permuted-MNIST table show every lite seed's rows", () => {
      const html = shown(path.join(tmp, 'report', '02-forgetting.ipynb'));
      // Table 1's family: the whole mixture (the compression runs are one-dataset mixtures)
      const whole = liteRuns().filter((r) => r.config.protocol.experiment === 'mixture' && r.data.tasks.length > 1);
      // the seeds Table 1 can rank: those with both their random and their joint run (a grid part-way through)
      const referenced = (seed: number) =>
        ['random', 'joint'].every((a) => whole.some((r) => r.config.approach === a && r.config.protocol.seed === seed));
      const mixture = whole.filter((r) => referenced(r.config.protocol.seed));
      const seedsOf = (approach: string) =>
        mixture.filter((r) => r.config.approach === approach && r.config.tag === approach).length;
      const hat = seedsOf('hat');
      assert.ok(hat > 0, 'the committed lite results have HAT on the mixture');
      assert.match(html, new RegExp(`${td('HAT')}${td(hat)}`), `Table 1's HAT row over its ${hat} seeds`);
      assert.match(html, new RegExp(`"name":"HAT \\(n=${hat}\\)"`), "Fig. 3's HAT trace");
      assert.match(html, /"name":"HAT, paper"/, "Fig. 3's paper points for HAT");
      assert.match(html, /Table 1: mean \(population std\) over seeds; ours: mixture/);
      for (const approach of ['sgd', 'ewc', 'lwf'])
        if (seedsOf(approach)) assert.match(html, new RegExp(td(approach.toUpperCase())), `a ${approach} row`);
      assert.match(html, /-0\.06 \(0\.01\)/, "the paper's HAT rho<=8");
      assert.match(
        html,
        /against the paper's at t = 8: Spearman's rank correlation \*\*-?[01]\.\d\d\*\* over 10 approaches/,
      );
      // the permuted-MNIST family (paper §4.2): every lite seed's HAT row beside the paper's 98.6% after 10 tasks
      const pmnist = liteRuns().filter((r) => r.config.protocol.experiment === 'pmnist' && r.config.tag === 'hat');
      assert.ok(pmnist.length >= 3, 'the committed lite results have HAT on pmnist over 3 seeds');
      assert.match(html, /Permuted MNIST: pmnist, 5 tasks[^<]*mean \(population std\) over seeds/);
      assert.match(
        html,
        new RegExp(`${td('HAT')}${td(pmnist.length)}<td[^>]*>\\d+\\.\\d \\(\\d+\\.\\d\\)</td>`),
        'its row',
      );
      assert.match(html, /A(&lt;|<)=10 98\.6%/, "the paper's number beside it");
    });

    test('the robustness grid, the gate log and the compression runs of the lite results are drawn', () => {
      const lite = liteRuns();
      const robustness = shown(path.join(tmp, 'report', '03-robustness.ipynb'));
      assert.match(robustness, /"type":"heatmap"/);
      for (const smax of new Set(
        lite
          .filter((r) => r.config.approach === 'hat' && r.config.tag.includes('smax'))
          .map((r) => r.config.parameters.smax),
      ))
        assert.match(robustness, new RegExp(`smax ${String(smax)}`), `a column for smax ${String(smax)}`);
      const capacity = shown(path.join(tmp, 'report', '04-capacity.ipynb'));
      assert.match(capacity, /Gate log: \*\*mixture\*\*/);
      assert.match(capacity, /"type":"heatmap"/, 'gates and reuse');
      const compression = shown(path.join(tmp, 'report', '05-compression.ipynb'));
      const datasets = lite.filter((r) => r.extras.compression).map((r) => r.data.tasks[0].name);
      assert.ok(datasets.length > 0, 'the committed lite results have compression runs');
      for (const d of datasets) assert.match(compression, new RegExp(td(d)), `a compression row for ${d}`);
      assert.match(compression, /paper: MNIST ≈ 1%/);
    });

    test("a user's own results are drawn instead, and the notebooks say so", async () => {
      const own = path.join(tmp, 'own');
      await makeNotebookFixtures(own);
      const out = path.join(tmp, 'report-own');
      const r = report(['--res-dir', own, '--out', out, ...FROM_RESULTS.map((f) => path.join(ROOT, 'notebooks', f))]);
      assert.equal(r.status, 0, `report failed:\n${r.stderr}`);
      for (const file of FROM_RESULTS) {
        const html = shown(path.join(out, file));
        assert.match(html, /\*\*Results: your own\*\*/, file);
        assert.match(html, /class="hat-figure"/, `${file}: a Plotly figure`);
      }
      const forgetting = shown(path.join(out, '02-forgetting.ipynb'));
      assert.match(forgetting, /Table 1: mean \(population std\) over seeds; ours: pmnist, 3 tasks; seeds 0,1/);
      for (const label of ['LFL', 'LWF', 'EWC', 'PATHNET', 'HAT'])
        assert.match(
          forgetting,
          new RegExp(`${td(label)}${td(2)}`),
          `Table 1 has a measured ${label} row over 2 seeds`,
        );
      const index = fs.readFileSync(path.join(out, 'index.html'), 'utf8');
      assert.match(index, /results: your own/);
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

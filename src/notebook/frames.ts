/** Result files as data frames: danfojs to load, arquero to summarise (typed wrappers for tslab's TypeScript). */
import type * as Danfo from 'danfojs/dist/danfojs-browser/src/index';
import type * as Arquero from 'arquero';
import type { RunResult } from '../runs/result-file';

/** danfojs (typed through its deep declaration path, which tslab's TypeScript does not find by itself). */
export function danfo(): typeof Danfo {
  return require('danfojs') as typeof Danfo;
}

/** arquero (an ES module, loaded through require on Node >= 20.19). */
export function arquero(): typeof Arquero {
  return require('arquero') as typeof Arquero;
}

/**
 * One row per (run, t, u): the long format of the accuracy matrices and forgetting ratios, as a danfojs
 * DataFrame (the "load" step of the notebooks).
 */
export function resultsFrame(results: RunResult[]): Danfo.DataFrame {
  const rows = results.flatMap((r) =>
    r.accuracy.flatMap((row, t) =>
      row.slice(0, t + 1).map((acc, u) => ({
        experiment: r.config.protocol.experiment,
        approach: r.config.tag,
        seed: r.config.protocol.seed,
        t: t + 1,
        u: u + 1,
        task: r.data.tasks[u]?.name ?? String(u),
        acc,
        rho: r.forgetting ? r.forgetting.ratios[t][u] : NaN,
      })),
    ),
  );
  const dfd = danfo();
  return new dfd.DataFrame(
    rows.length ? rows : [{ experiment: '', approach: '', seed: 0, t: 0, u: 0, task: '', acc: NaN, rho: NaN }],
  );
}

/** A danfojs frame as an arquero table (the "summarise" step). */
export function toArquero(df: Danfo.DataFrame): Arquero.ColumnTable {
  const dfd = danfo();
  return arquero().from(dfd.toJSON(df) as object[]);
}

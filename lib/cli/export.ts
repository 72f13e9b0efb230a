// mt-export's command line (bin/mt-export.ts is the executable).
import { Command, Option } from 'commander';
import { exportEncoder, type ExportFormat } from '../export';
import { configureProgram, parseFlags, reportError } from './common';

export async function runExportCli(argv: string[]): Promise<number> {
  const program = configureProgram(new Command('mt-export'), 'mt-export')
    .description(
      'Export a pre-trained encoder: torchvision-named ResNet safetensors without fc (loads with strict=True into ' +
        'torchvision resnetXX() after fc = Identity(), and into timm with num_classes=0), or ONNX; plus <out>.json ' +
        'with the architecture and the evaluation transform.',
    )
    .requiredOption('--pretrained <ckpt>', 'pre-training checkpoint, e.g. outputs/run1/last_epoch_ckpt.safetensors')
    .requiredOption('-o, --out <file>', 'output file (.safetensors, or .onnx with --format onnx)')
    .addOption(new Option('--encoder <which>', 'which encoder').choices(['teacher', 'student']).default('teacher'))
    .addOption(
      new Option('--format <f>', "torchvision (refuses non-torchvision widths/stems), safetensors (same names, any encoder), onnx")
        .choices(['torchvision', 'safetensors', 'onnx'])
        .default('torchvision'),
    )
    .option('--verbose', 'print stack traces on errors');
  const parsed = parseFlags<{ pretrained: string; out: string; encoder: 'teacher' | 'student'; format: ExportFormat; verbose?: boolean }>(program, argv);
  if ('exit' in parsed) return parsed.exit;
  const f = parsed.flags;
  try {
    const r = await exportEncoder({ checkpoint: f.pretrained, out: f.out, encoder: f.encoder, format: f.format });
    const d = r.description;
    const shape = `${d.arch}${d.width !== 1 ? ` width ${d.width}` : ''}${d.smallStem ? ', small stem' : ''}`;
    process.stdout.write(`mt-export: wrote ${r.file} (${d.encoder} encoder, ${shape}, ${d.featureDim}-d features, ${d.tensors} tensors) and ${r.json}\n`);
    if (d.torchvision) process.stdout.write(`  PyTorch: ${d.torchvision}\n  timm:    ${d.timm}\n`);
    for (const n of d.notes) process.stdout.write(`  note: ${n}\n`);
    return 0;
  } catch (e) {
    return reportError('mt-export', e, !!f.verbose);
  }
}

// mt-report's command line (bin/mt-report.ts is the executable).
import { Command } from 'commander';
import { writeReport } from '../report';
import { configureProgram, parseFlags, positiveInt, reportError } from './common';

export async function runReportCli(argv: string[]): Promise<number> {
  const program = configureProgram(new Command('mt-report'), 'mt-report')
    .description('Write <run>/report.html: PNG plots of loss, lr, τ, α, images/s and kNN top-1, the augmentation preview and the evaluation table.')
    .argument('<run-dir>', 'a run folder, e.g. outputs/quickstart')
    .option('--width <px>', 'plot width', positiveInt('--width'), 640)
    .option('--height <px>', 'plot height', positiveInt('--height'), 320)
    .option('--max-points <n>', 'points per plot at most (every k-th iteration beyond)', positiveInt('--max-points'), 2000)
    .option('--no-preview', 'skip the augmentation preview (does not open the training set)')
    .option('--verbose', 'print stack traces on errors');
  const parsed = parseFlags<{ width: number; height: number; maxPoints: number; preview: boolean; verbose?: boolean }>(program, argv);
  if ('exit' in parsed) return parsed.exit;
  const f = parsed.flags;
  try {
    const r = await writeReport(program.args[0], { size: { width: f.width, height: f.height }, maxPoints: f.maxPoints, preview: f.preview });
    process.stdout.write(`mt-report: wrote ${r.html} (${r.plots.map((p) => p.key).join(', ') || 'no plots'}${r.preview ? '; augmentation preview' : ''})\n`);
    for (const n of r.notes) process.stdout.write(`  note: ${n}\n`);
    return 0;
  } catch (e) {
    return reportError('mt-report', e, !!f.verbose);
  }
}

// A run's report: outputs/<name>/report.html with PNG plots of its metrics (loss, lr, τ, α,
// images/s, kNN top-1 when the run monitored it), the augmentation preview grid and the
// evaluation table. Plot files and their Vega-Lite specs go to outputs/<name>/report/.
import * as fs from 'fs';
import * as path from 'path';
import { FILES } from '../checkpoint';
import { UserError } from '../errors';
import type { PretrainConfig } from '../experiment';
import type { EvaluationResult } from '../feature-eval';
import { renderPng, thin, thinStride, vegaLiteSpec, type PlotSize, type PlotSpec, type SeriesPoint } from './plots';

export { renderPng, renderSvg, thin, vegaLiteSpec } from './plots';
export type { PlotSpec, PlotSize, SeriesPoint } from './plots';

export interface ReportOptions {
  /** Plot size in pixels. Default 640 x 320. */
  size?: PlotSize;
  /** Points per plot at most (every k-th iteration beyond that). Default 2000. */
  maxPoints?: number;
  /** Include the augmentation preview grid (opens the training set). Default true. */
  preview?: boolean;
}

export interface ReportResult {
  html: string;
  plots: { key: string; file: string; spec: string; points: number; of: number }[];
  preview?: string;
  notes: string[];
}

/** The series a report plots: metrics.jsonl key → title and axis label. */
export const SERIES: { key: string; title: string; unit: string; logScale?: boolean }[] = [
  { key: 'loss', title: 'Training loss', unit: 'loss' },
  { key: 'lr', title: 'Learning rate', unit: 'lr' },
  { key: 'tau', title: 'Teacher momentum τ', unit: 'τ' },
  { key: 'alpha', title: 'Momentum-BN α', unit: 'α' },
  { key: 'imagesPerSec', title: 'Throughput', unit: 'images/s' },
  { key: 'knn_top1', title: 'kNN top-1 (monitor)', unit: 'top-1 %' },
];

/** metrics.jsonl's records (a torn last line is skipped). */
export function readMetrics(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  const rows: Record<string, unknown>[] = [];
  for (const l of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!l.trim()) continue;
    try {
      rows.push(JSON.parse(l));
    } catch {
      /* torn line */
    }
  }
  return rows;
}

/** Points of `key` over iterations: every record with a finite number under that key. */
export function seriesOf(rows: Record<string, unknown>[], key: string): SeriesPoint[] {
  const out: SeriesPoint[] = [];
  for (const r of rows) {
    const v = r[key], it = r.iteration;
    if (typeof v === 'number' && Number.isFinite(v) && typeof it === 'number') out.push({ iteration: it, value: v });
  }
  return out;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function evaluationTable(e: EvaluationResult): string {
  const pct = (x?: number) => (x === undefined ? '–' : x.toFixed(2));
  const gain = (a?: number, b?: number) => (a === undefined || b === undefined ? '–' : `${a - b >= 0 ? '+' : ''}${(a - b).toFixed(2)}`);
  const rows = [];
  if (e.randomInit) rows.push(['random init', pct(e.randomInit.linearTop1), pct(e.randomInit.knnTop1)]);
  rows.push(['pre-trained', pct(e.pretrained.linearTop1), pct(e.pretrained.knnTop1)]);
  if (e.randomInit) rows.push(['gain', gain(e.pretrained.linearTop1, e.randomInit.linearTop1), gain(e.pretrained.knnTop1, e.randomInit.knnTop1)]);
  return (
    `<p>${e.testImages} test images; features of ${e.trainImages} training images, dimension ${e.featureDim}; ${e.seconds.toFixed(0)} s.</p>\n` +
    `<table><tr><th></th><th>linear top-1</th><th>kNN top-1</th></tr>\n` +
    rows.map((r) => `<tr><td>${r[0]}</td><td>${r[1]}</td><td>${r[2]}</td></tr>`).join('\n') +
    `</table>`
  );
}

/** The augmentation grid of the run's training set, as the run drew its views. */
async function previewGrid(cfg: PretrainConfig, out: string): Promise<void> {
  const { openDataset } = await import('../embed');
  const { writePreview, byolView1, byolView2 } = await import('../data');
  const d = cfg.data.train;
  if (d.kind === 'synthetic') throw new UserError('synthetic data has no images to preview');
  const ds = await openDataset(d);
  const a = cfg.data.augmentation;
  const common = {
    size: cfg.data.imageSize, scale: a.crop.scale, ratio: a.crop.ratio, jitter: a.colorJitter, grayscale: a.grayscale.p,
    flip: a.flip.p, mean: a.mean, std: a.std,
  };
  const views = [
    byolView1({ ...common, blur: { p: a.blur.p[0], sigma: a.blur.sigma }, solarize: { p: a.solarize.p[0], threshold: a.solarize.threshold } }),
    byolView2({ ...common, blur: { p: a.blur.p[1], sigma: a.blur.sigma }, solarize: { p: a.solarize.p[1], threshold: a.solarize.threshold } }),
  ];
  await writePreview(ds, out, { count: 6, views, seed: cfg.seed, cell: Math.max(cfg.data.imageSize, 96) });
}

/** Writes `<runDir>/report.html` and `<runDir>/report/*.png` from what the run wrote. */
export async function writeReport(runDir: string, o: ReportOptions = {}): Promise<ReportResult> {
  if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) throw new UserError(`run folder not found: ${runDir}`);
  const metricsFile = path.join(runDir, FILES.metrics);
  const configFile = path.join(runDir, FILES.config);
  if (!fs.existsSync(metricsFile) && !fs.existsSync(configFile)) {
    throw new UserError(`${runDir} holds no run (no ${FILES.metrics} or ${FILES.config}): give outputs/<experiment-name>`);
  }
  const size = o.size ?? { width: 640, height: 320 };
  const maxPoints = o.maxPoints ?? 2000;
  const dir = path.join(runDir, 'report');
  fs.mkdirSync(dir, { recursive: true });
  const rows = readMetrics(metricsFile);
  const notes: string[] = [];
  const result: ReportResult = { html: path.join(runDir, 'report.html'), plots: [], notes };
  let cfg: PretrainConfig | undefined;
  try {
    const c = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    if (c.kind === 'pretrain') cfg = c as PretrainConfig;
  } catch {
    notes.push(`no readable ${FILES.config}`);
  }

  const figures: string[] = [];
  for (const s of SERIES) {
    const all = seriesOf(rows, s.key);
    if (!all.length) continue;
    const values = thin(all, maxPoints);
    const p: PlotSpec = { key: s.key, title: s.title, unit: s.unit, values, logScale: s.logScale };
    const png = path.join(dir, `${s.key}.png`);
    const specFile = path.join(dir, `${s.key}.vl.json`);
    fs.writeFileSync(specFile, JSON.stringify(vegaLiteSpec(p, size)) + '\n');
    fs.writeFileSync(png, await renderPng(p, size));
    result.plots.push({ key: s.key, file: png, spec: specFile, points: values.length, of: all.length });
    const thinned = values.length < all.length ? ` (${values.length} of ${all.length} points: every ${thinStride(all.length, maxPoints)}th record)` : '';
    figures.push(`<figure><img src="report/${s.key}.png" width="${size.width}" height="${size.height}" alt="${esc(s.title)}"><figcaption>${esc(s.title)}${thinned}</figcaption></figure>`);
  }
  if (!rows.length) notes.push(`no ${FILES.metrics} records yet`);

  let previewHtml = '';
  if ((o.preview ?? true) && cfg) {
    const out = path.join(dir, 'augmentations.png');
    try {
      await previewGrid(cfg, out);
      result.preview = out;
      previewHtml = `<h2>Augmentations</h2>\n<p>Training images beside their two views (view 1 | view 2) as the run's augmentation draws them (seed ${cfg.seed}, epoch 1).</p>\n<img src="report/augmentations.png" alt="augmentation preview">`;
    } catch (e) {
      notes.push(`no augmentation preview: ${(e as Error).message}`);
    }
  }

  let evalHtml = '';
  const evalFile = path.join(runDir, FILES.evaluation);
  if (fs.existsSync(evalFile)) {
    try {
      evalHtml = `<h2>Evaluation on frozen features</h2>\n${evaluationTable(JSON.parse(fs.readFileSync(evalFile, 'utf8')) as EvaluationResult)}`;
    } catch (e) {
      notes.push(`${FILES.evaluation} unreadable: ${(e as Error).message}`);
    }
  }

  const last = rows.length ? rows[rows.length - 1] : undefined;
  const name = cfg?.name ?? path.basename(path.resolve(runDir));
  const summary = cfg
    ? `${esc(cfg.model.arch)}${cfg.model.width !== 1 ? ` width ${cfg.model.width}` : ''}, batch ${cfg.batchSize}, ${cfg.maxEpoch} epochs` +
      (last ? `; last record: iteration ${last.iteration}, epoch ${last.epoch}` : '')
    : '';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(name)} — momentum2-teacher report</title>
<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}figure{display:inline-block;margin:0 1em 1em 0}
figcaption{font-size:90%;color:#444}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .8em;text-align:right}</style>
</head><body>
<h1>${esc(name)}</h1>
<p>${summary}. Written ${new Date().toISOString()} from ${FILES.metrics} (${rows.length} records).</p>
<h2>Training</h2>
${figures.join('\n')}
${previewHtml}
${evalHtml}
${notes.length ? `<h2>Notes</h2><ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
  fs.writeFileSync(result.html, html);
  return result;
}

/** The end-of-run hook: writes the report and logs where; a failure is a warning, never the run's error. */
export async function reportAtEnd(runDir: string, log: { info(m: string): void; warn(m: string): void }): Promise<void> {
  try {
    const r = await writeReport(runDir);
    log.info(`Report: ${r.html} (${r.plots.length} plots${r.preview ? ', augmentation preview' : ''})`);
  } catch (e) {
    log.warn(`no report written: ${(e as Error).message}`);
  }
}

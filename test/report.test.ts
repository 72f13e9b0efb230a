// The run report: a pre-training run on IDX files (.gz) writes report.html at its end; its PNGs
// have the stated size, each plot's Vega-Lite data equal the run's metrics.jsonl series, the
// augmentation grid and the evaluation table are in. mt-report rewrites it with other sizes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { pretrain, pretrainBase, writeReport } from '../lib';
import { readMetrics, seriesOf } from '../lib/report';
import { runReportCli } from '../lib/cli/report';
import { writeIdx } from './helpers/idx';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-report-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const pngSize = async (f: string) => {
  const m = await sharp(f).metadata();
  return [m.width, m.height];
};

test('a pre-training run ends with report.html: plots = metrics, augmentation grid, evaluation table', async () => {
  const data = writeIdx(tmp, 24, 20, 3, true);
  const idx = { kind: 'idx' as const, images: data.images, labels: data.labels };
  const exp = pretrainBase.extend({
    batchSize: 8, maxEpoch: 2, warmupEpochs: 1, threads: 1, printInterval: 1,
    model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 32, outDim: 16 },
    data: { train: idx, imageSize: 16, workers: 1 },
    evaluation: { train: idx, test: idx, resizeSize: 18, linearEpochs: 2, knnK: 3, knnTrainLimit: 0, compareRandomInit: true },
  });
  const run = await pretrain({ experiment: exp, name: 'rep', outputDir: tmp });
  const dir = run.outputDir;
  expect(run.iterations).toBe(6);
  const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
  const rows = readMetrics(path.join(dir, 'metrics.jsonl'));
  expect(rows).toHaveLength(6);
  for (const key of ['loss', 'lr', 'tau', 'alpha', 'imagesPerSec']) {
    const png = path.join(dir, 'report', `${key}.png`);
    expect(await pngSize(png)).toEqual([640, 320]);
    expect(html).toContain(`src="report/${key}.png"`);
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'report', `${key}.vl.json`), 'utf8'));
    expect(spec.data.values).toEqual(rows.map((r) => ({ iteration: r.iteration, value: r[key] })));
    expect(spec.data.values).toHaveLength(6);
  }
  // No kNN monitor in this run: no kNN plot.
  expect(fs.existsSync(path.join(dir, 'report', 'knn_top1.png'))).toBe(false);
  const grid = await pngSize(path.join(dir, 'report', 'augmentations.png'));
  expect(grid).toEqual([3 * 96 + 4 * 4, 6 * 96 + 7 * 4]); // 6 rows of image | view 1 | view 2, 96 px cells
  expect(html).toContain('src="report/augmentations.png"');
  const ev = JSON.parse(fs.readFileSync(path.join(dir, 'evaluation.json'), 'utf8'));
  expect(html).toContain(`<tr><td>pre-trained</td><td>${ev.pretrained.linearTop1.toFixed(2)}</td><td>${ev.pretrained.knnTop1.toFixed(2)}</td></tr>`);
  expect(html).toContain('<td>random init</td>');
  expect(fs.readFileSync(path.join(dir, 'train_log.txt'), 'utf8')).toMatch(/Report: .*report\.html \(5 plots, augmentation preview\)/);
});

test('kNN accuracy rows (from the monitor) get their own plot; long series are thinned to their own values', async () => {
  const dir = path.join(tmp, 'synthetic');
  fs.mkdirSync(dir);
  const lines: string[] = [];
  for (let i = 1; i <= 5000; i++) lines.push(JSON.stringify({ iteration: i, epoch: 1 + Math.floor(i / 1000), loss: 3 * Math.exp(-i / 900) + 0.1, lr: 0.1 }));
  for (const e of [1, 2, 3, 4, 5]) lines.push(JSON.stringify({ iteration: e * 1000, epoch: e, knn_top1: 40 + 8 * e }));
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  const r = await writeReport(dir, { size: { width: 400, height: 240 }, maxPoints: 1000 });
  const rows = readMetrics(path.join(dir, 'metrics.jsonl'));
  expect(r.plots.map((p) => p.key)).toEqual(['loss', 'lr', 'knn_top1']);
  const knn = JSON.parse(fs.readFileSync(path.join(dir, 'report', 'knn_top1.vl.json'), 'utf8'));
  expect(knn.data.values).toEqual([1, 2, 3, 4, 5].map((e) => ({ iteration: e * 1000, value: 40 + 8 * e })));
  const loss = JSON.parse(fs.readFileSync(path.join(dir, 'report', 'loss.vl.json'), 'utf8'));
  const all = seriesOf(rows, 'loss');
  expect(loss.data.values.length).toBeLessThanOrEqual(1000);
  expect(loss.data.values.length).toBeGreaterThan(500);
  expect(loss.data.values[loss.data.values.length - 1]).toEqual(all[all.length - 1]);
  for (const p of loss.data.values) expect(p).toEqual(all[p.iteration - 1]); // every point is a metric's own value
  for (const p of r.plots) expect(await pngSize(p.file)).toEqual([400, 240]);
  expect(r.notes.join(' ')).toMatch(/no readable config\.json/);
});

test('mt-report: a folder without a run is a one-line error; --width/--height/--no-preview', async () => {
  const err: string[] = [];
  const out: string[] = [];
  const se = jest.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  const so = jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  try {
    expect(await runReportCli([tmp + '/nothing'])).toBe(1);
    expect(await runReportCli([path.join(tmp, 'rep'), '--width', '300', '--height', '200', '--no-preview'])).toBe(0);
  } finally {
    se.mockRestore();
    so.mockRestore();
  }
  expect(err.join('')).toMatch(/^mt-report: error: run folder not found: .*nothing\n$/);
  expect(out.join('')).toMatch(/wrote .*report\.html \(loss, lr, tau, alpha, imagesPerSec\)/);
  expect(await pngSize(path.join(tmp, 'rep', 'report', 'loss.png'))).toEqual([300, 200]);
});

// The kNN monitor during pre-training (experiment key `monitor`): when it runs, where its reading
// goes (train_log.txt, metrics.jsonl `knn_top1`, the 'monitor' event), and that the reading is the
// weighted kNN top-1 of the epoch checkpoint's teacher features, recomputed here by brute force.
import * as fs from 'fs';
import * as path from 'path';
import { FILES, LinearProbe, pretrain, pretrainBase, readCheckpoint } from '../lib';
import { extractFeatures, type Features } from '../lib/feature-eval';
import type { MonitorEvent } from '../lib/pretrain';
import { dataProvider } from '../lib/data/epoch-source';
import { addonBuilt, tmpDir } from './helpers/dist';

const maybe = addonBuilt() ? describe : describe.skip;

const memory = { kind: 'synthetic', size: 30, numClasses: 3, imageSize: 32 } as const;
const heldOut = { kind: 'synthetic', size: 40, numClasses: 3, imageSize: 32, limit: 12 } as const;
const exp = pretrainBase.extend({
  batchSize: 8,
  maxEpoch: 3,
  warmupEpochs: 0,
  threads: 1,
  model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 64, outDim: 32 },
  data: { train: { kind: 'synthetic', size: 24, numClasses: 3, imageSize: 32 }, imageSize: 32, workers: 1 },
  monitor: { knnEvery: 2, k: 7, temperature: 0.1, memoryLimit: 0, queryLimit: 0, train: memory, test: heldOut },
});

/** Reference: cosine similarities in float64, the k best, Σ exp(s/T) per class; top-1 %. */
function knnTop1(mem: Features, q: Features, k: number, t: number): number {
  const { d } = mem;
  const unit = (f: Features, i: number) => {
    const v = Array.from(f.x.subarray(i * d, (i + 1) * d));
    const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    return v.map((x) => x / n);
  };
  const M = Array.from({ length: mem.n }, (_, i) => unit(mem, i));
  let correct = 0;
  for (let a = 0; a < q.n; a++) {
    const u = unit(q, a);
    const sims = M.map((m, i) => ({ s: m.reduce((acc, x, j) => acc + x * u[j], 0), i })).sort((x, y) => y.s - x.s || x.i - y.i);
    const votes = [0, 0, 0];
    for (const { s, i } of sims.slice(0, k)) votes[mem.y[i]] += Math.exp(s / t);
    if (votes.indexOf(Math.max(...votes)) === q.y[a]) correct++;
  }
  return (100 * correct) / q.n;
}

maybe('kNN monitor during pre-training', () => {
  const root = tmpDir('m2t-monitor-');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('every knnEvery epochs and after the last: log, metrics row, event; the reading is the brute-force kNN', async () => {
    const events: MonitorEvent[] = [];
    await pretrain({ experiment: exp, name: 'mon', outputDir: root, on: { monitor: (e) => events.push(e) } });
    const out = path.join(root, 'mon');
    expect(events.map((e) => [e.epoch, e.iteration, e.memory, e.queries])).toEqual([[2, 6, 30, 12], [3, 9, 30, 12]]);
    const log = fs.readFileSync(path.join(out, FILES.trainLog), 'utf8');
    expect(log).toMatch(/kNN-Monitor: \[2\/3\], Top-1: \d+\.\d\d \(k 7, 30 memory \/ 12 held-out images, /);
    expect(log).toMatch(/kNN-Monitor: \[3\/3\]/);
    expect(log).not.toMatch(/kNN-Monitor: \[1\/3\]/);
    const rows = fs.readFileSync(path.join(out, FILES.metrics), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const knnRows = rows.filter((r) => 'knn_top1' in r);
    expect(knnRows.map((r) => [r.iteration, r.epoch])).toEqual([[6, 2], [9, 3]]);
    expect(knnRows.map((r) => r.knn_top1)).toEqual(events.map((e) => Math.round(e.top1 * 1e4) / 1e4));
    // The last reading, recomputed from the final checkpoint's teacher encoder.
    const cfg = exp.config;
    const probe = new LinearProbe({ arch: 'resnet18', width: 0.125, smallStem: true, numClasses: 2, threads: 1 });
    probe.loadEncoder((await readCheckpoint(path.join(out, FILES.lastEpoch))).tensors, 'teacher_encoder.');
    const mem = await extractFeatures(probe, dataProvider(), cfg, cfg.data.imageSize, memory);
    const q = await extractFeatures(probe, dataProvider(), cfg, cfg.data.imageSize, heldOut);
    expect([mem.n, q.n]).toEqual([30, 12]);
    expect(events[1].top1).toBeCloseTo(knnTop1(mem, q, 7, 0.1), 10);
  });

  test('a monitor with no datasets and no evaluation block is refused before anything is written', async () => {
    const noData = pretrainBase.extend({
      batchSize: 8, maxEpoch: 1, warmupEpochs: 0, threads: 1, model: exp.config.model, data: exp.config.data, monitor: { knnEvery: 1 },
    });
    await expect(pretrain({ experiment: noData, name: 'bad', outputDir: root })).rejects.toThrow(/monitor: no monitor.train dataset, and no evaluation block/);
    expect(fs.existsSync(path.join(root, 'bad', FILES.trainLog))).toBe(false);
  });

  test('knnEvery 0 turns it off', async () => {
    const events: MonitorEvent[] = [];
    await pretrain({ experiment: exp.extend({ maxEpoch: 1, monitor: { knnEvery: 0 } }), name: 'off', outputDir: root, on: { monitor: (e) => events.push(e) } });
    expect(events).toEqual([]);
    expect(fs.readFileSync(path.join(root, 'off', FILES.metrics), 'utf8')).not.toMatch(/knn_top1/);
  });
});

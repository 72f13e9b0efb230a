// The exports and logs read back by the Python tools people use: torchvision and timm load the
// mt-export file of a ResNet-50 with strict=True and compute the package's features; TensorBoard's
// own reader reads the scalars MetricsWriter wrote. Needs .venv-test (bash scripts/setup-python-venv.sh);
// without it these tests are skipped and say why.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { LinearProbe, readCheckpoint } from '../lib/engine';
import { exportEncoder } from '../lib/export';
import { MetricsWriter } from '../lib/logging';
import { f32, writeSafetensors } from '../lib/safetensors';
import { images, toNchw, trainedCheckpoint, type TinyRun } from './helpers/checkpoints';

const root = path.join(__dirname, '..');
const python = process.env.M2T_TEST_PYTHON ?? path.join(root, '.venv-test', 'bin', 'python');
const probe = fs.existsSync(python) ? spawnSync(python, ['-c', 'import torch, torchvision, timm, tensorboard'], { encoding: 'utf8' }) : undefined;
const skipReason = !probe
  ? `${path.relative(root, python)} not found (run: bash scripts/setup-python-venv.sh)`
  : probe.status !== 0
    ? `${python} cannot import torch/torchvision/timm/tensorboard: ${probe.stderr.trim().split('\n').pop()}`
    : undefined;
if (skipReason) console.warn(`python-interop tests SKIPPED: ${skipReason}`);
const maybe = skipReason ? test.skip : test;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-python-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs a Python tool; its stdout's JSON lines. */
function py(args: string[]): Record<string, unknown>[] {
  const p = spawnSync(python, args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
  if (p.status !== 0) throw new Error(`${args[0]} failed:\n${p.stderr}`);
  return p.stdout.trim().split('\n').map((l) => JSON.parse(l));
}

maybe(`ResNet-50 export loads in torchvision (strict=True) and timm (num_classes=0); features ≤ 1e-4 relative${skipReason ? ` — skipped: ${skipReason}` : ''}`, async () => {
  const r: TinyRun = { arch: 'resnet50', width: 1, smallStem: false, imageSize: 64 };
  const ck = path.join(tmp, 'r50.safetensors');
  await trainedCheckpoint(ck, r);
  const args = [path.join(root, 'tools', 'export', 'check_export.py'), '--timm'];
  const sd = (await readCheckpoint(ck)).tensors;
  const x = images(2, 64, 5);
  for (const encoder of ['teacher', 'student'] as const) {
    const out = path.join(tmp, `r50_${encoder}.safetensors`);
    const res = await exportEncoder({ checkpoint: ck, out, encoder });
    expect(res.description.torchvision).toMatch(/^m = torchvision\.models\.resnet50\(\); m\.fc = torch\.nn\.Identity\(\)/);
    const net = new LinearProbe({ arch: 'resnet50', numClasses: 2, threads: 2 });
    net.loadEncoder(sd, `${encoder}_encoder.`);
    const io = path.join(tmp, `io_${encoder}.safetensors`);
    writeSafetensors(io, { input: f32([2, 3, 64, 64], toNchw(x)), features: f32([2, 2048], await net.features(x)) });
    args.push('--check', out, io);
  }
  const results = py(args);
  expect(results).toHaveLength(2);
  for (const got of results) {
    console.log(`ResNet-50 export in PyTorch: ${JSON.stringify(got)}`);
    expect(got).toMatchObject({ arch: 'resnet50', n: 2, dim: 2048, torchvision_strict: true });
    expect(got.torchvision_rel_err).toBeLessThanOrEqual(1e-4);
    expect(got.timm_rel_err).toBeLessThanOrEqual(1e-4);
  }
});

maybe(`TensorBoard's EventAccumulator reads MetricsWriter's scalars${skipReason ? ` — skipped: ${skipReason}` : ''}`, () => {
  const dir = path.join(tmp, 'run');
  const m = new MetricsWriter(path.join(dir, 'metrics.jsonl'));
  const rows = Array.from({ length: 120 }, (_, i) => ({ iteration: i + 1, epoch: 1 + Math.floor(i / 50), loss: 2 / (i + 1), lr: 0.001 * (i + 1), tau: 0.99 + i * 1e-5 }));
  for (const r of rows) m.write(r);
  m.write({ iteration: 120, epoch: 3, knn_top1: 87.5 });
  m.close();
  const got = py([path.join(root, 'tools', 'export', 'read_tensorboard.py'), path.join(dir, 'tensorboard')])[0] as Record<string, [number, number][]>;
  expect(Object.keys(got).sort()).toEqual(['epoch', 'knn_top1', 'loss', 'lr', 'tau']);
  for (const key of ['loss', 'lr', 'tau'] as const) {
    expect(got[key].map((p) => p[0])).toEqual(rows.map((r) => r.iteration));
    // Summary values are float32.
    got[key].forEach((p, i) => expect(p[1]).toBe(Math.fround(rows[i][key])));
  }
  expect(got.knn_top1).toEqual([[120, 87.5]]);
});

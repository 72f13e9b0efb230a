// Multi-process linear evaluation on CPU (Gloo on loopback). The probe's data-parallel step applies the mean
// of the per-rank classifier gradients (checked against separate single-process steps), and mt-eval --nproc 2
// runs as mt-train's workers do: every rank ends with bitwise the same classifier, rank 0 alone writes the
// run's files, and a resume with another number of processes is refused.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readCheckpoint } from '../lib/engine';
import { DIST, dataLayerBuilt, requireDist, tmpDir, writeFile } from './helpers/dist';
import { tinyEval, tinyPretrain } from './helpers/fixtures';
import { freePort } from './helpers/net';

const maybe = dataLayerBuilt() ? describe : describe.skip;

interface Exit { code: number | null; signal: NodeJS.Signals | null; out: string; }

function node(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { cwd, env: { ...process.env, FORCE_COLOR: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    c.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}

// One rank: a probe in the group and, beside it, a probe of its own; one step each on this rank's batch.
const RANK_SCRIPT = `
const { ProcessGroup } = require(${JSON.stringify(path.join(DIST, 'lib', 'distributed', 'process-group.js'))});
const { LinearProbe } = require(${JSON.stringify(path.join(DIST, 'lib', 'engine.js'))});
const [rank, port] = process.argv.slice(2).map(Number);
const cfg = { arch: 'resnet18', width: 0.125, smallStem: true, numClasses: 5, seed: 7, threads: 1, momentum: 0, weightDecay: 0 };
const n = 6, s = 16;
let u = 12345 + 977 * rank; // this rank's batch: its own pseudo-random images and labels
const rnd = () => ((u = (Math.imul(u, 1103515245) + 12345) >>> 0) / 2 ** 32);
const images = { data: Float32Array.from({ length: n * s * s * 3 }, () => rnd() * 2 - 1), shape: [n, s, s, 3] };
const labels = Int32Array.from({ length: n }, () => Math.floor(rnd() * 5));
const classifier = (p) => Object.fromEntries(Object.entries(p.stateDict()).filter(([k]) => k.startsWith('fc.') && !/running_|num_batches/.test(k))
  .map(([k, t]) => [k, Array.from(t.data)]));
(async () => {
  const pg = await ProcessGroup.connect({ rank, worldSize: 2, host: '127.0.0.1', port, timeoutMs: 30000 });
  const alone = new LinearProbe(cfg);
  const before = classifier(alone);
  await alone.trainStep(images, labels, 0.5);
  const together = new LinearProbe({ ...cfg, processGroup: pg });
  await together.trainStep(images, labels, 0.5);
  console.log(JSON.stringify({ before, alone: classifier(alone), together: classifier(together) }));
  process.exit(0);
})().catch((e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
`;

const ckpt = (dir: string, rank = 0) => rank === 0
  ? path.join(dir, 'last_epoch_ckpt.safetensors')
  : path.join(dir, 'ranks', `rank${rank}`, 'last_epoch_ckpt.safetensors');

async function classifierOf(file: string): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries((await readCheckpoint(file)).tensors)) {
    if (k.startsWith('fc.') && !/running_|num_batches/.test(k)) out[k] = (t as { data: Float32Array }).data;
  }
  return out;
}

maybe('multi-process linear evaluation (CPU, Gloo)', () => {
  let dir: string;
  beforeAll(() => {
    requireDist(['bin/mt-train.js', 'bin/mt-eval.js', 'lib/distributed/process-group.js']);
    dir = tmpDir('m2t-dist-eval-');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('one data-parallel probe step applies the mean of the per-rank classifier gradients', async () => {
    const script = writeFile(path.join(dir, 'rank.js'), RANK_SCRIPT);
    const port = await freePort();
    const res = await Promise.all([0, 1].map((r) => node([script, String(r), String(port)], dir)));
    const out = res.map((r) => {
      expect({ code: r.code, out: r.out }).toMatchObject({ code: 0 });
      return JSON.parse(r.out.trim().split('\n').pop()!) as Record<'before' | 'alone' | 'together', Record<string, number[]>>;
    });
    // SGD without momentum or decay: w1 = w0 − lr·g, so the group's step must land on the mean of the two
    // single-process steps, (w0 − lr·g0 + w0 − lr·g1) / 2 = w0 − lr·(g0 + g1)/2; and both ranks agree bitwise.
    const keys = Object.keys(out[0].before);
    expect(keys.sort()).toEqual(['fc.0.bias', 'fc.0.weight', 'fc.1.bias', 'fc.1.weight']);
    let moved = 0;
    for (const k of keys) {
      expect(out[0].before[k]).toEqual(out[1].before[k]); // the same initial classifier
      expect(out[0].together[k]).toEqual(out[1].together[k]);
      const mean = out[0].alone[k].map((a, i) => (a + out[1].alone[k][i]) / 2);
      out[0].together[k].forEach((v, i) => expect(Math.abs(v - mean[i])).toBeLessThan(1e-6 + 1e-5 * Math.abs(mean[i])));
      moved += out[0].alone[k].filter((v, i) => v !== out[1].alone[k][i]).length;
    }
    expect(moved).toBeGreaterThan(0); // the ranks' own gradients differ: the check above is not vacuous
  });

  test('mt-eval --nproc 2: ranks agree bitwise, rank 0 alone writes the run\'s files; another world size cannot resume it', async () => {
    tinyPretrain(dir);
    tinyEval(dir);
    const train = await node([path.join(DIST, 'bin', 'mt-train.js'), '-f', 'tiny_pretrain.ts', '-d', 'cpu', '-expn', 'pre', '--progress', 'none'], dir);
    expect(train).toMatchObject({ code: 0 });
    const port = await freePort();
    const evalArgs = [path.join(DIST, 'bin', 'mt-eval.js'), '-f', 'tiny_eval.ts', '-expn', 'pre', '-d', 'cpu', '--progress', 'none'];
    const r = await node([...evalArgs, '--nproc', '2', '--dist-url', `tcp://127.0.0.1:${port}`], dir);
    expect({ code: r.code, out: r.out }).toMatchObject({ code: 0 });
    expect(r.out.match(/best top-1/g)).toHaveLength(1); // one summary, from rank 0
    const out = path.join(dir, 'outputs', 'pre', 'byol_linear_eval_teacher');
    const log = fs.readFileSync(path.join(out, 'eval_log.txt'), 'utf8');
    expect(log).toMatch(/2 processes \(4 images each per step\)/);
    expect(log.match(/Linear evaluation start/g)).toHaveLength(1);
    expect(log.match(/Eval-Epoch: \[\d\/2\]/g)).toHaveLength(2); // rank 0 evaluates every epoch
    const metrics = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.kind !== 'eval')).toHaveLength(8); // 2 epochs × 32 / 8 iterations, written once
    expect(fs.existsSync(path.join(out, 'best_ckpt.safetensors'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'ranks', 'rank1', 'eval_log.txt'))).toBe(false);
    const [c0, c1] = await Promise.all([classifierOf(ckpt(out, 0)), classifierOf(ckpt(out, 1))]);
    expect(Object.keys(c0).sort()).toEqual(Object.keys(c1).sort());
    expect(Object.keys(c0).filter((k) => !Buffer.from(c0[k].buffer, c0[k].byteOffset, c0[k].byteLength)
      .equals(Buffer.from(c1[k].buffer, c1[k].byteOffset, c1[k].byteLength)))).toEqual([]);
    // Its checkpoint says it was written by 2 processes: one process cannot resume it.
    const meta = (await readCheckpoint(ckpt(out))).metadata;
    expect(meta['run.iteration']).toBe('8');
    const one = await node([...evalArgs, '--resume'], dir);
    expect(one.code).not.toBe(0);
    expect(one.out).toMatch(/written by a run of 2 process\(es\), this one has 1/);
  }, 180000);
});

// Issue 13, findings 2, 3, 4 and 6 at the engine: every C++ exception reaches JS as an Error, the
// memory estimate refuses what cannot fit (and counts the state exactly), a checkpoint never
// holds a non-finite tensor, and a probe refuses an encoder of another architecture.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LinearProbe, Momentum2Teacher, estimateMemory, type Arch, type ImageBatch, type M2TConfig } from '../lib/engine';

const cfg: M2TConfig = { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 32, outDim: 16, totalIterations: 10, threads: 2 };

function images(n: number, size: number, value?: number): ImageBatch {
  const data = new Float32Array(n * size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = value ?? Math.sin(i * 0.37);
  return { data, shape: [n, size, size, 3] };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
}

const numel = (sd: Record<string, { data: Float32Array }>) => Object.values(sd).reduce((s, t) => s + t.data.length, 0);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-harden-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('sizes the validators accept but memory cannot hold', () => {
  test.each([
    ['Momentum2Teacher', { arch: 'resnet18', width: 0.25, hiddenDim: 2 ** 20, outDim: 2 ** 20, totalIterations: 10 }],
    ['LinearProbe', { arch: 'resnet50', numClasses: 2 ** 24 }],
    ['Momentum2Teacher', { arch: 'resnet152', width: 16, totalIterations: 10 }],
  ] as const)('%s %j is refused with the estimate and the memory available', (kind, config) => {
    const e = thrown(() => (kind === 'LinearProbe' ? new LinearProbe(config as never) : new Momentum2Teacher(config as never)));
    expect(e.name).toBe('RangeError');
    expect(e.message).toMatch(new RegExp(`^${kind}: needs about [\\d.]+ [KMGTPE]iB .* but only [\\d.]+ [KMGTPE]?i?B is available \\(`));
  });
});

describe('estimateMemory', () => {
  const archs: Arch[] = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152'];
  test.each(archs)('%s: the state element count is exact (both stems, both models)', (arch) => {
    for (const smallStem of [true, false]) {
      const m = { ...cfg, arch, width: 0.0625, smallStem };
      expect(estimateMemory('Momentum2Teacher', m).stateElements).toBe(numel(new Momentum2Teacher(m).stateDict()));
      const p = { arch, width: 0.0625, smallStem, numClasses: 7 };
      expect(estimateMemory('LinearProbe', p).stateElements).toBe(numel(new LinearProbe(p).stateDict()));
    }
  });

  test('activations grow linearly with the batch and with the pixels', () => {
    const a = estimateMemory('Momentum2Teacher', cfg, { n: 8, h: 32, w: 32 });
    const b = estimateMemory('Momentum2Teacher', cfg, { n: 16, h: 32, w: 32 });
    const c = estimateMemory('Momentum2Teacher', cfg, { n: 8, h: 64, w: 64 });
    expect(a.activationBytes).toBeGreaterThan(0);
    // Linear in the batch (a per-image slope plus the BN layers' statistics, which do not grow with it).
    expect(b.activationBytes - a.activationBytes).toBe(8 * a.breakdown.activationsPerImage);
    expect(b.activationBytes / a.activationBytes).toBeCloseTo(2, 1);
    expect(c.activationBytes / a.activationBytes).toBeGreaterThan(3.5);
    expect(c.activationBytes / a.activationBytes).toBeLessThan(4.01);
    expect(a.totalBytes).toBe(a.modelBytes + a.activationBytes);
    expect(a.availableBytes).toBeGreaterThan(0);
  });

  test('a batch whose activations exceed the memory available is refused before the step', () => {
    // A child process: jest's process.env is not the C environment the addon reads.
    const est = estimateMemory('Momentum2Teacher', cfg, { n: 4, h: 16, w: 16 });
    const script = `
      const a = require(${JSON.stringify(path.join(__dirname, '..', process.env.M2T_ADDON_DIR ?? 'build/Release', 'm2t.node'))});
      const cfg = ${JSON.stringify(cfg)};
      const img = (n) => new Float32Array(n * 16 * 16 * 3).fill(0.5);
      const out = {};
      (async () => {
        const net = new a.Momentum2Teacher(cfg);
        await net.step(img(4), [4, 16, 16, 3], img(4), [4, 16, 16, 3], 0.05);
        try { await net.step(img(64), [64, 16, 16, 3], img(64), [64, 16, 16, 3], 0.05); out.big = 'ran'; } catch (e) { out.big = e.name + ': ' + e.message; }
        out.iteration = net.iteration();
        process.stdout.write(JSON.stringify(out));
      })();`;
    const run = (avail: number) =>
      spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, M2T_MEMORY_AVAILABLE: String(avail) } });
    const r = run(est.modelBytes + est.activationBytes * 2);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.big).toMatch(/^RangeError: Momentum2Teacher: needs about .*activations [\d.]+ [KM]iB\) but only [\d.]+ [KM]iB is available \(M2T_MEMORY_AVAILABLE\)/);
    expect(out.iteration).toBe(1);
    const small = run(est.modelBytes / 2);
    expect(small.status).not.toBe(0);
    expect(small.stderr).toMatch(/RangeError: Momentum2Teacher: needs about/);
  });

  test('bad arguments are errors naming them', () => {
    expect(thrown(() => estimateMemory('Nope' as never, cfg)).message).toMatch(/kind must be/);
    expect(thrown(() => estimateMemory('Momentum2Teacher', cfg, { n: -1, h: 1, w: 1 })).message).toMatch(/'n'/);
    expect(thrown(() => estimateMemory('LinearProbe', { arch: 'resnet18' } as never)).message).toMatch(/numClasses/);
  });
});

describe('non-finite state', () => {
  test('a step that overflows the state names the tensor, and save refuses to write it', async () => {
    const net = new Momentum2Teacher(cfg);
    const good = path.join(tmp, 'good.safetensors');
    await net.save(good, { note: 'good' });
    const before = fs.readFileSync(good);
    const r = await net.step(images(4, 16, 1e30), images(4, 16, -1e30), 0.05);
    expect(typeof r.nonFinite).toBe('string');
    expect(Object.keys(net.stateDict())).toContain(r.nonFinite);
    const sd = net.stateDict();
    const t = sd[r.nonFinite!].data;
    expect(t.some((v) => !Number.isFinite(v))).toBe(true);
    await expect(net.save(good, { note: 'bad' })).rejects.toThrow(new RegExp(`good.safetensors: not written: tensor '${r.nonFinite!.replace(/\./g, '\\.')}' holds a non-finite value`));
    expect(fs.readFileSync(good).equals(before)).toBe(true);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('a non-finite buffer no update writes (a BN running variance) is found too, with the loss and weights finite', async () => {
    const net = new Momentum2Teacher(cfg);
    const sd = net.stateDict();
    const name = 'student_encoder.layer1.0.bn2.running_var';
    sd[name].data[3] = Number.POSITIVE_INFINITY; // train-mode BN normalises with the batch's statistics: only this buffer carries it
    net.loadStateDict(sd);
    const r = await net.step(images(4, 16), images(4, 16), 0.05);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.nonFinite).toBe(name);
  });

  test('a finite step reports no non-finite tensor', async () => {
    const r = await new Momentum2Teacher(cfg).step(images(4, 16), images(4, 16), 0.05);
    expect(r.nonFinite).toBeUndefined();
  });
});

describe('linear probe on an encoder of another architecture', () => {
  test('a ResNet-34 state loaded into a ResNet-18 probe is an error naming the extra tensors', () => {
    const r34 = new Momentum2Teacher({ ...cfg, arch: 'resnet34' }).stateDict();
    const probe = new LinearProbe({ arch: 'resnet18', width: 0.125, smallStem: true, numClasses: 4 });
    const e = thrown(() => probe.loadEncoder(r34, 'teacher_encoder.'));
    expect(e.message).toMatch(/^encoder: \d+ tensors are not part of resnet18 \(width 0\.125\): 'teacher_encoder\.layer1\.2\./);
    // Its own architecture loads.
    probe.loadEncoder(new Momentum2Teacher(cfg).stateDict(), 'teacher_encoder.');
  });
});

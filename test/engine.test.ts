// The Node-API engine from JS: steps run off the event loop and report τ/α; state round-trips;
// every kind of bad input is a JS error naming the parameter, key or file (never a crash).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Dataset, EvalLoader, PretrainLoader, byolView1, byolView2, linearEvalTransform } from '../lib/data';
import { LinearProbe, Momentum2Teacher, backends, readCheckpoint, type ImageBatch, type M2TConfig } from '../lib/engine';

const cfg: M2TConfig = {
  arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 32, outDim: 16, totalIterations: 10, threads: 2,
};

function images(n: number, size: number, seed: number): ImageBatch {
  const data = new Float32Array(n * size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(seed * 1000 + i * 0.37);
  return { data, shape: [n, size, size, 3] };
}

// Errors made by the addon come from Node's realm, not jest's sandbox: compare names, not classes.
function errorName(fn: () => unknown): string | undefined {
  try { fn(); } catch (e) { return (e as Error).name; }
  return undefined;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-engine-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('Momentum2Teacher', () => {
  test('steps follow the τ and α cosine schedules and the event loop stays free', async () => {
    const net = new Momentum2Teacher(cfg);
    expect(net.iteration).toBe(0);
    expect(net.alpha).toBe(1);
    expect(net.tau).toBeCloseTo(0.99, 12);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const r = await net.step(images(4, 16, 1), images(4, 16, 2), 0.05);
    clearInterval(timer);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(r.loss).toBeGreaterThan(0);
    expect(r.loss).toBeLessThan(8);
    expect(r.tau).toBeCloseTo(0.99, 12);
    expect(r.alpha).toBeCloseTo((Math.cos(Math.PI / 10) + 1) / 2, 12);
    expect(r.iteration).toBe(1);
    expect(net.tau).toBeCloseTo(1 - 0.01 * (Math.cos(Math.PI / 10) + 1) / 2, 12);
    expect(ticks).toBeGreaterThan(0);
  });

  test('state dict uses PyTorch names and round-trips through loadStateDict and save/load', async () => {
    const a = new Momentum2Teacher(cfg);
    await a.step(images(4, 16, 1), images(4, 16, 2), 0.05);
    const sd = a.stateDict({ optimizer: true });
    expect(sd['student_encoder.conv1.weight'].shape).toEqual([8, 3, 3, 3]);
    expect(sd['student_encoder.fc.7.weight'].shape).toEqual([16, 32]);
    expect(sd['teacher_encoder.fc.3.bias'].shape).toEqual([16]);
    expect(sd['teacher_encoder.fc.4.weight']).toBeUndefined();
    expect(sd['optimizer.student_encoder.conv1.weight.momentum_buffer'].shape).toEqual([8, 3, 3, 3]);
    const b = new Momentum2Teacher({ ...cfg, seed: 5 });
    b.loadStateDict(sd, { optimizer: true });
    expect(b.stateDict({ optimizer: true })['student_encoder.layer4.1.bn2.running_var'].data)
      .toEqual(sd['student_encoder.layer4.1.bn2.running_var'].data);

    const file = path.join(tmp, 'a.safetensors');
    await a.save(file, { note: 'hello' });
    const c = new Momentum2Teacher({ ...cfg, seed: 7 });
    const meta = await c.load(file);
    expect(meta.note).toBe('hello');
    expect(c.iteration).toBe(1);
    const v1 = images(4, 16, 3), v2 = images(4, 16, 4);
    const [ra, rc] = [await a.step(v1, v2, 0.04), await c.step(v1, v2, 0.04)];
    expect(rc.loss).toBe(ra.loss);
    const ck = await readCheckpoint(file);
    expect(ck.tensors['teacher_encoder.bn1.num_batches_tracked'].shape).toEqual([]);
    expect(ck.metadata.format).toBe('momentum2-teacher/1');
  });

  test('bad configuration names the parameter', () => {
    expect(errorName(() => new Momentum2Teacher({ ...cfg, arch: 'resnet19' as never }))).toBe('RangeError');
    expect(() => new Momentum2Teacher({ ...cfg, arch: 'resnet19' as never })).toThrow(/arch.*resnet19/);
    expect(() => new Momentum2Teacher({ ...cfg, width: Number.NaN })).toThrow(/'width'/);
    expect(() => new Momentum2Teacher({ ...cfg, totalIterations: 0 })).toThrow(/'totalIterations'/);
    expect(() => new Momentum2Teacher({ ...cfg, tauBase: 1.5 })).toThrow(/'tauBase'/);
    expect(() => new Momentum2Teacher({ ...cfg, optimizer: { name: 'adam' as never } })).toThrow(/optimizer.name.*adam/);
    expect(() => new Momentum2Teacher({ ...cfg, optimizer: { name: 'sgd', momentum: -1 } })).toThrow(/'momentum'/);
    expect(() => new Momentum2Teacher({ ...cfg, hiddenDim: 2.5 })).toThrow(/'hiddenDim' must be an integer/);
    expect(() => new Momentum2Teacher({ ...cfg, bogus: 1 } as never)).toThrow(/unknown key 'bogus'/);
    expect(errorName(() => new Momentum2Teacher({ ...cfg, smallStem: 'yes' } as never))).toBe('TypeError');
  });

  test('the device travels to the engine: cpu runs, a device this build lacks is a clear error', async () => {
    expect(backends()).toContain('cpu');
    const net = new Momentum2Teacher({ ...cfg, device: 'cpu' });
    expect((await net.step(images(2, 16, 1), images(2, 16, 2), 0.05)).iteration).toBe(1);
    if (!backends().some((b) => b.startsWith('cuda'))) {
      expect(() => new Momentum2Teacher({ ...cfg, device: 'cuda:0' })).toThrow(/device cuda:0.*no CUDA backend/);
      expect(() => new LinearProbe({ arch: 'resnet18', numClasses: 3, device: 'cuda:0' })).toThrow(/no CUDA backend/);
    }
    expect(errorName(() => new Momentum2Teacher({ ...cfg, device: 'gpu' as never }))).toBe('RangeError');
    expect(() => new Momentum2Teacher({ ...cfg, device: 'gpu' as never })).toThrow(/device: expected 'cpu' or 'cuda:N', got 'gpu'/);
  });

  test('bad step arguments name the argument and leave the model usable', async () => {
    const net = new Momentum2Teacher(cfg);
    const good = images(2, 16, 1);
    const step = (v1: unknown, v2: unknown, lr: unknown) => net.step(v1 as ImageBatch, v2 as ImageBatch, lr as number);
    expect(() => step({ data: new Float64Array(1536), shape: [2, 16, 16, 3] }, good, 0.1)).toThrow(/view1: data must be a Float32Array/);
    expect(() => step(good, { data: good.data.subarray(1), shape: good.shape }, 0.1)).toThrow(/view2: data has 1535 elements/);
    expect(() => step(good, { data: good.data, shape: [2, 16, 48, 1] }, 0.1)).toThrow(/view2: shape .* 3 channels/);
    expect(() => step(good, images(3, 16, 2), 0.1)).toThrow(/view2: shape \[3, 16, 16, 3\] differs/);
    expect(() => step(good, good, Number.POSITIVE_INFINITY)).toThrow(/lr must be a finite number/);
    const nan = images(2, 16, 1);
    nan.data[5] = Number.NaN;
    expect(() => step(nan, good, 0.1)).toThrow(/view1: element 5 is not finite/);
    await expect(step(images(2, 4, 1), images(2, 4, 2), 0.1)).resolves.toBeDefined();
    const r = await step(good, images(2, 16, 2), 0.1);
    expect(Number.isFinite(r.loss)).toBe(true);
  });

  test('an overlapping call is rejected, not queued', async () => {
    const net = new Momentum2Teacher(cfg);
    const first = net.step(images(4, 16, 1), images(4, 16, 2), 0.05);
    expect(() => net.step(images(4, 16, 1), images(4, 16, 2), 0.05)).toThrow(/still running; await it first/);
    expect(() => net.stateDict()).toThrow(/while a call is running/);
    await first;
    await expect(net.step(images(4, 16, 1), images(4, 16, 2), 0.05)).resolves.toBeDefined();
  });

  test('bad state dicts and files name the key or file and change nothing', async () => {
    const net = new Momentum2Teacher(cfg);
    const sd = net.stateDict();
    const before = net.stateDict()['student_encoder.conv1.weight'].data.slice();
    const missing = { ...sd };
    delete missing['teacher_encoder.bn1.running_mean'];
    expect(() => net.loadStateDict(missing)).toThrow(/missing key 'teacher_encoder.bn1.running_mean'/);
    expect(() => net.loadStateDict({ ...sd, 'extra.weight': { shape: [1], data: new Float32Array(1) } }))
      .toThrow(/unexpected key 'extra.weight'/);
    expect(() => net.loadStateDict({ ...sd, 'student_encoder.conv1.weight': { shape: [216], data: new Float32Array(216) } }))
      .toThrow(/'student_encoder.conv1.weight' has shape \[216\], expected \[8, 3, 3, 3\]/);
    expect(() => net.loadStateDict({ ...sd, 'student_encoder.conv1.weight': { shape: [8, 3, 3, 3], data: new Float32Array(3) } }))
      .toThrow(/'student_encoder.conv1.weight' has 3 elements/);
    expect(net.stateDict()['student_encoder.conv1.weight'].data).toEqual(before);

    const good = path.join(tmp, 'good.safetensors');
    await net.save(good);
    const bytes = fs.readFileSync(good);
    const truncated = path.join(tmp, 'truncated.safetensors');
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
    await expect(net.load(truncated)).rejects.toThrow(/truncated\.safetensors: not a valid safetensors file/);
    const garbage = path.join(tmp, 'garbage.safetensors');
    fs.writeFileSync(garbage, Buffer.concat([Buffer.from([20, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a": oops oops oops')]));
    await expect(net.load(garbage)).rejects.toThrow(/garbage\.safetensors: .*header is not JSON/);
    await expect(net.load(path.join(tmp, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: cannot open/);
    await expect(net.save(path.join(tmp, 'no', 'such', 'dir.safetensors'))).rejects.toThrow(/dir\.safetensors: cannot write/);
    expect(net.iteration).toBe(0);
    expect(net.stateDict()['student_encoder.conv1.weight'].data).toEqual(before);
  });
});

describe('LinearProbe', () => {
  const pcfg = { arch: 'resnet18' as const, width: 0.125, smallStem: true, numClasses: 10, threads: 2 };

  test('loads a teacher encoder, trains the classifier only, evaluates top-1/top-5', async () => {
    const net = new Momentum2Teacher(cfg);
    const probe = new LinearProbe(pcfg);
    probe.loadEncoder(net.stateDict());
    const enc0 = probe.stateDict()['encoder.layer1.0.conv1.weight'].data.slice();
    expect(enc0).toEqual(net.stateDict()['teacher_encoder.layer1.0.conv1.weight'].data);
    const x = images(8, 16, 9);
    const labels = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    const losses: number[] = [];
    for (let i = 0; i < 15; i++) losses.push((await probe.trainStep(x, labels, 0.5)).loss);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    expect(probe.stateDict()['encoder.layer1.0.conv1.weight'].data).toEqual(enc0);
    const ev = await probe.evaluate(x, labels);
    expect(ev.logits.length).toBe(80);
    expect(ev.top1).toBeGreaterThanOrEqual(0);
    expect(ev.top5).toBeGreaterThanOrEqual(ev.top1);
    expect(ev.top5).toBeLessThanOrEqual(8);
    const f = await probe.features(x);
    expect(f.length).toBe(8 * 64);
  });

  test('bad inputs name the problem', async () => {
    const probe = new LinearProbe(pcfg);
    const x = images(4, 16, 1);
    expect(() => probe.trainStep(x, new Int32Array(3), 0.1)).toThrow(/labels has 3 entries for 4 images/);
    expect(() => probe.trainStep(x, Int32Array.from([0, 1, 2, 10]), 0.1)).toThrow(/labels\[3\] = 10 is outside \[0, 10\)/);
    expect(() => probe.trainStep(x, new Float32Array(4) as never, 0.1)).toThrow(/labels must be an Int32Array/);
    expect(() => probe.loadEncoder({})).toThrow(/encoder: missing key 'teacher_encoder.conv1.weight'/);
    const wide = new Momentum2Teacher({ ...cfg, width: 0.25 });
    expect(() => probe.loadEncoder(wide.stateDict())).toThrow(/different arch or width/);
    expect(() => new LinearProbe({ ...pcfg, numClasses: 1 })).toThrow(/'numClasses'/);
  });
});

// Loader batches reach the engine by reference (the pooled buffer wrapped as the step's input
// tensor, no copy, no scan: the loader proves its values finite when it is configured). Any
// other Float32Array is copied and checked (the NaN test above).
describe('batches from the native loader', () => {
  const S = 16;
  function pixels(n: number): Dataset {
    const data = new Uint8Array(n * 20 * 20 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 97 + 13) & 255;
    return Dataset.fromPixels({ data, n, height: 20, width: 20, channels: 3, labels: Array.from({ length: n }, (_, i) => i % 3) });
  }
  const copy = (v: ImageBatch): ImageBatch => ({ data: v.data.slice(), shape: v.shape });

  test('step in place: bit-identical to a copied batch, and release() mid-step is safe', async () => {
    const loader = new PretrainLoader(pixels(8), { batchSize: 4, seed: 1, threads: 1, prefetch: 1, view1: byolView1({ size: S }), view2: byolView2({ size: S }) });
    const inPlace = new Momentum2Teacher(cfg), copied = new Momentum2Teacher(cfg);
    let last: ImageBatch | undefined;
    for (const epoch of [0, 1]) { // two epochs: the pool's buffers are reused while steps run
      for await (const b of loader.epoch(epoch)) {
        const c1 = copy(b.view1), c2 = copy(b.view2);
        const pending = inPlace.step(b.view1, b.view2, 0.05);
        b.release(); // the step keeps the pooled memory until it settles; JS sees empty arrays
        expect(b.view1.data.length).toBe(0);
        const [r, ref] = [await pending, await copied.step(c1, c2, 0.05)];
        expect(r.loss).toBe(ref.loss);
        last = b.view1;
      }
    }
    expect(inPlace.iteration).toBe(4);
    expect(inPlace.stateDict()['student_encoder.conv1.weight'].data).toEqual(copied.stateDict()['student_encoder.conv1.weight'].data);
    // A released batch is refused with the usual message, never read.
    expect(() => inPlace.step(last!, last!, 0.05)).toThrow(/view1: data has 0 elements/);
    loader.close();
  });

  test('a value written into a loader batch is not re-scanned (proof the batch is used in place); the divergence guard reports it', async () => {
    const loader = new PretrainLoader(pixels(8), { batchSize: 4, seed: 2, threads: 1, view1: byolView1({ size: S }), view2: byolView2({ size: S }) });
    const net = new Momentum2Teacher(cfg);
    for await (const b of loader.epoch(0)) {
      b.view1.data[7] = Number.NaN; // a copied batch would be refused here: "view1: element 7 is not finite"
      const r = await net.step(b.view1, b.view2, 0.05);
      expect(Number.isNaN(r.loss)).toBe(true);
      expect(r.nonFinite).toBeDefined();
      b.release();
      break;
    }
    loader.close();
  });

  test('a sub-range of a loader batch is copied and checked like user memory', async () => {
    const loader = new PretrainLoader(pixels(8), { batchSize: 4, seed: 2, threads: 1, view1: byolView1({ size: S }), view2: byolView2({ size: S }) });
    const net = new Momentum2Teacher(cfg);
    for await (const b of loader.epoch(0)) {
      const half = S * S * 3 * 2;
      const v1: ImageBatch = { data: b.view1.data.subarray(0, half), shape: [2, S, S, 3] };
      const v2: ImageBatch = { data: b.view2.data.subarray(half), shape: [2, S, S, 3] };
      v1.data[7] = Number.NaN;
      expect(() => net.step(v1, v2, 0.05)).toThrow(/view1: element 7 is not finite/);
      b.release();
      break;
    }
    loader.close();
  });

  test('LinearProbe trains and evaluates on loader batches in place, the same as on copies', async () => {
    const loader = new EvalLoader(pixels(6), { batchSize: 3, seed: 3, threads: 1, transform: linearEvalTransform({ size: S }) });
    const probeCfg = { arch: 'resnet18' as const, width: 0.125, smallStem: true, numClasses: 3, threads: 2 };
    const a = new LinearProbe(probeCfg), b = new LinearProbe(probeCfg);
    for await (const batch of loader.epoch(0)) {
      const c = copy(batch.images);
      const pending = a.trainStep(batch.images, batch.labels, 0.1);
      const ref = await b.trainStep(c, batch.labels, 0.1);
      expect((await pending).loss).toBe(ref.loss);
      expect((await a.evaluate(batch.images, batch.labels)).logits).toEqual((await b.evaluate(c, batch.labels)).logits);
      expect(await a.features(batch.images)).toEqual(await b.features(c));
      batch.release();
    }
    loader.close();
  });

  test('a normalisation that would make a non-finite value is refused by the loader', () => {
    expect(() => new PretrainLoader(pixels(8), { batchSize: 4, view1: byolView1({ size: S }), view2: byolView2({ size: S, std: [0.2, 1e-40, 0.2] }) }))
      .toThrow(/view2\.std: channel 1 .* normalises level 0 to -inf; every normalised value must be finite/);
  });
});

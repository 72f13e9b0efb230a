// The memory plan through the API: estimateMemory's breakdown adds up and is linear in the batch,
// Momentum2Teacher.memoryBreakdown() states the plan at the batch it stepped and the allocator's
// measurement, which is at least the plan (the plan's match with the allocator's peak at several
// sizes is native/models/memory_plan_test.cc; this process holds other models' memory too).
import { Momentum2Teacher, estimateMemory, type M2TConfig } from '../lib/engine';
import { formatMemory, memoryLine, processMemory } from '../lib/memory';

const cfg: M2TConfig = { arch: 'resnet18', width: 0.25, smallStem: true, hiddenDim: 64, outDim: 32, totalIterations: 10, threads: 2 };
const batch = (n: number, size: number, seed: number) => {
  const data = new Float32Array(n * size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37 + seed);
  return { data, shape: [n, size, size, 3] as [number, number, number, number] };
};

describe('estimateMemory breakdown', () => {
  test('the categories add up to the total, and only activations grow with the batch, by activationsPerImage', () => {
    const a = estimateMemory('Momentum2Teacher', cfg, { n: 4, h: 32, w: 32 });
    const b = estimateMemory('Momentum2Teacher', cfg, { n: 20, h: 32, w: 32 });
    const d = a.breakdown;
    expect(d.parameters + d.gradients + d.optimizer + d.teacher + d.activations).toBe(a.totalBytes);
    expect(d.parameters + d.gradients + d.optimizer + d.teacher).toBe(a.modelBytes);
    // Student parameters and teacher: both hold the encoder and projector; gradients = momentum buffers.
    expect(d.gradients).toBe(d.optimizer);
    expect(d.teacher).toBeLessThan(d.parameters);
    expect(b.modelBytes).toBe(a.modelBytes);
    expect(d.activationsPerImage).toBeGreaterThan(0);
    expect(b.activationBytes - a.activationBytes).toBe(16 * d.activationsPerImage);
  });
});

describe('Momentum2Teacher.memoryBreakdown', () => {
  test('states the plan at the batch it stepped and measures at least that much', async () => {
    const net = new Momentum2Teacher(cfg);
    const before = net.memoryBreakdown();
    expect(before.planned.batch).toEqual({ n: 0, h: 0, w: 0 });
    expect(before.planned.activations).toBe(0);
    expect(before.planned.total).toBe(estimateMemory('Momentum2Teacher', cfg).totalBytes);
    await net.step(batch(6, 32, 1), batch(6, 32, 2), 0.05);
    const m = net.memoryBreakdown({ resetPeak: true });
    expect(m.planned.batch).toEqual({ n: 6, h: 32, w: 32 });
    expect(m.planned.total).toBe(estimateMemory('Momentum2Teacher', cfg, { n: 6, h: 32, w: 32 }).totalBytes);
    expect(m.measured.inUse).toBeGreaterThanOrEqual(0.99 * m.planned.total);
    expect(m.measured.peakInUse).toBeGreaterThanOrEqual(m.measured.inUse!);
    expect(m.measured.workspaces).toBeGreaterThan(0);
    // After the reset the peak restarts at what is in use.
    expect(net.memoryBreakdown().measured.peakInUse).toBe(net.memoryBreakdown().measured.inUse);

    const line = formatMemory(m, {}, { rss: 1, peakRss: 3 * 1024 ** 3 });
    expect(line).toMatch(/^Memory: planned [\d.]+ MiB at batch 6 32x32, allocator peak [\d.]+ MiB, workspaces [\d.]+ [KM]iB, process peak RSS 3\.00 GiB$/);
    expect(formatMemory(m, { verbose: true })).toMatch(
      /\(parameters [\d.]+ MiB, gradients [\d.]+ MiB, optimizer [\d.]+ MiB, teacher [\d.]+ MiB, activations [\d.]+ MiB = [\d.]+ [KM]iB\/image\)$/,
    );
    expect(memoryLine(net)).toMatch(/^Memory: planned/);
    expect(memoryLine({ step: () => undefined })).toBeUndefined();
    if (process.platform === 'linux') expect(processMemory()!.peakRss).toBeGreaterThanOrEqual(processMemory()!.rss);
  });
});

// What a captured device graph (issue 10) needs of the loop, and what keeps cudaMalloc out of it: once the
// first step has bound the plan, a step takes no memory from the system, only the two views' batch
// buffers back from the allocator's cache. Fails if an op or the binding allocates anew per step.
describe('steady-state steps', () => {
  test.each(['fp32', 'bf16'] as const)('%s: after the first step, no system allocation and two cached blocks a step', async (precision) => {
    let net: Momentum2Teacher;
    try {
      net = new Momentum2Teacher({ ...cfg, precision });
    } catch (e) {
      expect(String(e)).toMatch(/needs a CPU with AVX512-BF16 or AMX/); // this CPU has no bf16 convolution
      return;
    }
    const v1 = batch(4, 16, 1), v2 = batch(4, 16, 2);
    await net.step(v1, v2, 0.05);
    const a = net.memoryBreakdown().measured;
    for (let i = 0; i < 3; i++) await net.step(v1, v2, 0.05);
    const b = net.memoryBreakdown().measured;
    expect(b.systemAllocations! - a.systemAllocations!).toBe(0);
    expect(b.allocations! - a.allocations!).toBe(3 * 2);
  });
});

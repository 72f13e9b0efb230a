// Mixed precision's key end to end and its refusal on CPUs without bf16 convolution. The numbers
// (bf16 vs fp32 over 50 steps, bf16 kernels vs the exact convolution of rounded operands) are in
// native/tests/precision_test.cc and native/ops/conv/conv_test.cc.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { estimateMemory } from '../lib/engine';
import { pretrainBase } from '../lib/experiment';

const addon = path.join(__dirname, '..', process.env.M2T_ADDON_DIR ?? 'build/Release', 'm2t.node');
const cfg = { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 16, outDim: 8, totalIterations: 4, threads: 1 };

// A child process whose oneDNN believes the CPU stops at `isa` (DNNL_MAX_CPU_ISA): builds the
// engine in fp32 and bf16 and reports what happened.
function withIsa(isa: string): { fp32: string; bf16: string } {
  const script = `
    const a = require(${JSON.stringify(addon)});
    const cfg = ${JSON.stringify(cfg)};
    const img = new Float32Array(2 * 16 * 16 * 3).fill(0.5);
    const out = {};
    (async () => {
      for (const precision of ['fp32', 'bf16']) {
        try {
          const net = new a.Momentum2Teacher({ ...cfg, precision });
          const r = await net.step(img, [2, 16, 16, 3], img, [2, 16, 16, 3], 0.05);
          out[precision] = Number.isFinite(r.loss) ? 'ran' : 'loss ' + r.loss;
        } catch (e) { out[precision] = e.name + ': ' + e.message; }
      }
      process.stdout.write(JSON.stringify(out));
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, DNNL_MAX_CPU_ISA: isa } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as { fp32: string; bf16: string };
}

describe('precision', () => {
  test("a CPU without AVX512-BF16 or AMX refuses 'bf16' with one clear line and still runs 'fp32'", () => {
    const out = withIsa('AVX512_CORE');
    expect(out.fp32).toBe('ran');
    expect(out.bf16).toBe(
      "Error: precision 'bf16' needs a CPU with AVX512-BF16 or AMX; this CPU has AVX512 (use precision 'fp32')");
    expect(withIsa('AVX2').bf16).toMatch(/this CPU has AVX2 \(use precision 'fp32'\)$/);
  });

  test("'bf16' keeps the student's saved activations in 2 bytes: the planned activations shrink, the model does not", () => {
    const batch = { n: 16, h: 112, w: 112 };
    const big = { arch: 'resnet50' as const, width: 1, smallStem: false, hiddenDim: 4096, outDim: 256, totalIterations: 100 };
    const fp = estimateMemory('Momentum2Teacher', { ...big, precision: 'fp32' }, batch);
    const bf = estimateMemory('Momentum2Teacher', { ...big, precision: 'bf16' }, batch);
    expect(bf.modelBytes).toBe(fp.modelBytes);
    // The saved arena halves (BN outputs, x̂, block outputs in bf16); the work slots (f32 conv
    // outputs and gradients), the f32 images, heads and BN statistics do not: 0.60 here.
    expect(bf.activationBytes / fp.activationBytes).toBeGreaterThan(0.55);
    expect(bf.activationBytes / fp.activationBytes).toBeLessThan(0.65);
  });

  test('the experiment takes fp32 or bf16 (default fp32) and names the key otherwise', () => {
    expect(pretrainBase.config.precision).toBe('fp32');
    expect(pretrainBase.extend({ precision: 'bf16' }).config.precision).toBe('bf16');
    expect(() => pretrainBase.extend({ precision: 'fp16' } as never)).toThrow(/precision.*'fp32' \| 'bf16'|precision.*fp32.*bf16/);
  });
});

// Benchmark of the whole Momentum² Teacher step (npm run bench:step).
// Prints images/s of ours and, when a Python with torch is found (M2T_TORCH_PYTHON, .venv,
// or python3), of the PyTorch reference model (tools/bench/torch_step.py) on the same thread
// count, in NCHW and in channels_last, and the ratio ours/PyTorch for each and for the faster
// one. Numbers, not assertions.
//
// Precision: the bf16 row runs our mixed precision (precision: 'bf16') against PyTorch's bf16
// autocast, and prints bf16/fp32 of ours. For ResNet-50 rows it also prints ours as a percentage
// of the oneDNN convolution ceiling of the same step (tools/bench/conv-ceiling, built on demand
// into build/conv-ceiling: every convolution of the step at its shape, nothing else) — a step
// can be no faster. --no-ceiling skips that; --only-precision fp32|bf16 runs just those rows.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Momentum2Teacher, type Arch } from '../../lib/engine';
import { syntheticBatch } from './inputs';

type Precision = 'fp32' | 'bf16';
interface Config { arch: Arch; smallStem: boolean; size: number; batch: number; precision: Precision }
const CONFIGS: Config[] = [
  { arch: 'resnet18', smallStem: true, size: 32, batch: 64, precision: 'fp32' },
  { arch: 'resnet50', smallStem: false, size: 112, batch: 16, precision: 'fp32' },
  { arch: 'resnet50', smallStem: false, size: 112, batch: 16, precision: 'bf16' },
];

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

/** img/s over wall time, and images per CPU-second of this process (steady under load from other processes). */
async function ours(c: Config, threads: number, budget: number): Promise<{ ips: number; iters: number; perCpu: number; planMB: number; allocPeakMB: number; workspacesMB: number }> {
  const net = new Momentum2Teacher({
    arch: c.arch, smallStem: c.smallStem, totalIterations: 100000, threads, hiddenDim: 4096, outDim: 256,
    precision: c.precision,
  });
  const v1 = syntheticBatch(c.batch, c.size, 1), v2 = syntheticBatch(c.batch, c.size, 2);
  await net.step(v1, v2, 0.05); // warm-up: primitive creation, allocation
  let iters = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (iters < 2 || elapsed < budget) {
    await net.step(v1, v2, 0.05);
    iters++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  const cpu = process.cpuUsage(cpu0);
  const mem = net.memoryBreakdown(), MB = 1024 * 1024;
  return {
    ips: (iters * c.batch) / elapsed, iters, perCpu: (iters * c.batch) / ((cpu.user + cpu.system) / 1e6),
    planMB: mem.planned.total / MB, allocPeakMB: (mem.measured.peakInUse ?? NaN) / MB, workspacesMB: mem.measured.workspaces / MB,
  };
}

function findTorchPython(): string | undefined {
  const candidates = [process.env.M2T_TORCH_PYTHON, path.join('.venv', 'bin', 'python'), 'python3'];
  for (const py of candidates) {
    if (!py || (py.includes('/') && !fs.existsSync(py))) continue;
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

/** Peak resident memory of this process so far (VmHWM), in MB. */
function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Measured { ips: number; iters: number; perCpu: number; peakMB: number; planMB: number; allocPeakMB: number; workspacesMB: number }

// Each configuration runs in a child process of its own, so its peak memory is its own.
function oursInChild(c: Config, threads: number, budget: number): Measured {
  const r = spawnSync(process.execPath, [...process.execArgv, __filename, '--child', JSON.stringify(c),
    '--threads', String(threads), '--budget', String(budget)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try { return JSON.parse(line) as Measured; } catch { throw new Error(`benchmark child failed (${r.status}): ${r.stdout}`); }
}

function torchRef(py: string, c: Config, threads: number, budget: number, channelsLast: boolean): { ips: number; peakMB?: number } | undefined {
  const args = ['tools/bench/torch_step.py', '--arch', c.arch, '--size', String(c.size), '--batch', String(c.batch),
    '--threads', String(threads), '--budget', String(budget)];
  if (c.smallStem) args.push('--small-stem');
  if (c.precision === 'bf16') args.push('--precision', 'bf16');
  if (channelsLast) args.push('--channels-last');
  const r = spawnSync(py, args, { encoding: 'utf8' });
  const line = r.stdout.trim().split('\n').pop();
  try {
    const j = JSON.parse(line ?? '');
    return { ips: j.images_per_s, peakMB: j.peak_rss_mb };
  } catch { return undefined; }
}

/** The conv-ceiling binary, configured and built into build/conv-ceiling when missing or stale. */
function ceilingBinary(): string | undefined {
  const dir = path.join('build', 'conv-ceiling');
  const cfg = spawnSync('cmake', ['-S', path.join('tools', 'bench', 'conv-ceiling'), '-B', dir], { stdio: 'ignore' });
  const build = cfg.status === 0 ? spawnSync('cmake', ['--build', dir], { stdio: 'ignore' }) : cfg;
  const bin = path.join(dir, 'conv_ceiling');
  return build.status === 0 && fs.existsSync(bin) ? bin : undefined;
}

/** images/s (and images per CPU-second) the step's convolutions alone allow (tools/bench/conv-ceiling). */
function ceiling(bin: string, c: Config, threads: number, budget: number): { ips: number; perCpu: number } | undefined {
  const args = ['--arch', c.arch, '--size', String(c.size), '--batch', String(c.batch), '--threads', String(threads),
    '--precision', c.precision, '--budget', String(Math.max(2, budget / 2))];
  if (c.smallStem) args.push('--small-stem');
  const r = spawnSync(bin, args, { encoding: 'utf8' });
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { images_per_s: number; images_per_cpu_s: number };
    return { ips: j.images_per_s, perCpu: j.images_per_cpu_s };
  } catch { return undefined; }
}

async function main(): Promise<void> {
  const threads = Number(arg('threads', '2'));
  const budget = Number(arg('budget', '20'));
  const child = arg('child', '');
  if (child) {
    const o = await ours(JSON.parse(child) as Config, threads, budget);
    console.log(JSON.stringify({ ...o, peakMB: peakRssMB() }));
    return;
  }
  const py = process.argv.includes('--no-torch') ? undefined : findTorchPython();
  const only = arg('only-precision', '');
  const bin = process.argv.includes('--no-ceiling') ? undefined : ceilingBinary();
  console.log(`Momentum² Teacher step, CPU, ${threads} threads, ~${budget}s per measurement; peak = the process's peak RSS ` +
    `(ours: also the engine's memory plan, its allocator's peak and oneDNN's workspaces)`);
  const fp32Ips = new Map<string, number>();
  for (const c of CONFIGS) {
    if (only && c.precision !== only) continue;
    const key = `${c.arch}${c.smallStem ? ' small-stem' : ''} ${c.size}px batch ${c.batch}`;
    const label = `${key} ${c.precision}`;
    let o: Measured;
    try {
      o = oursInChild(c, threads, budget);
    } catch (e) {
      console.log(`${label}: ours failed: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    let line = `${label}: ours ${o.ips.toFixed(2)} img/s, ${o.perCpu.toFixed(2)} img/CPU-s (${o.iters} steps), peak ${o.peakMB.toFixed(0)} MB ` +
      `(planned ${o.planMB.toFixed(0)} MB, allocator peak ${o.allocPeakMB.toFixed(0)} MB, workspaces ${o.workspacesMB.toFixed(0)} MB)`;
    if (c.precision === 'fp32') fp32Ips.set(key, o.ips);
    else if (fp32Ips.has(key)) line += `; ${c.precision}/fp32 ${(o.ips / (fp32Ips.get(key) as number)).toFixed(2)}x`;
    // PyTorch in its default NCHW layout and in channels_last (NHWC, often faster on CPU, much
    // faster for bf16 with AMX); the ratio that counts is against the faster of the two.
    const t = py ? torchRef(py, c, threads, budget, false) : undefined;
    const tl = py ? torchRef(py, c, threads, budget, true) : undefined;
    const torchName = c.precision === 'bf16' ? 'pytorch bf16 autocast' : 'pytorch';
    if (t !== undefined) {
      line += `; ${torchName} ${t.ips.toFixed(2)} img/s, ratio ${(o.ips / t.ips).toFixed(2)}x`;
      if (t.peakMB !== undefined) line += `, peak ${t.peakMB.toFixed(0)} MB (ours/pytorch ${(o.peakMB / t.peakMB).toFixed(2)})`;
      if (tl !== undefined) {
        line += `; channels_last ${tl.ips.toFixed(2)} img/s, ratio ${(o.ips / tl.ips).toFixed(2)}x; ` +
          `ours vs pytorch's faster layout ${(o.ips / Math.max(t.ips, tl.ips)).toFixed(2)}x`;
      }
    } else line += '; pytorch not installed';
    if (bin && c.arch === 'resnet50') {
      const ceil = ceiling(bin, c, threads, budget);
      line += ceil === undefined ? '; conv ceiling unavailable'
        : `; oneDNN ${c.precision} conv ceiling ${ceil.ips.toFixed(2)} img/s, ${ceil.perCpu.toFixed(2)} img/CPU-s: ours ` +
          `${((100 * o.ips) / ceil.ips).toFixed(0)}% of it (${((100 * o.perCpu) / ceil.perCpu).toFixed(0)}% per CPU-s)`;
    }
    console.log(line);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });

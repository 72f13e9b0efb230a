// Benchmark (npm run bench:data): two-view augmentation at 224 px from ImageNet-like JPEGs,
// images per second with one thread and with all cores, and — where torchvision and Pillow are
// installed — the reference's same pipeline in torchvision with as many worker processes.
//   npm run bench:data -- [--dir DIR] [--images 640] [--batch 32] [--size 224] [--python /tmp/tv/bin/python]
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Dataset, PretrainLoader, byolView1, byolView2 } from '../../lib/data';
import { makeBenchFolder } from './make_images';

const args = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = args.indexOf(k);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : d;
};
const dir = opt('--dir', path.join(os.tmpdir(), 'm2t-bench-images'));
const images = Number(opt('--images', '640'));
const batch = Number(opt('--batch', '32'));
const size = Number(opt('--size', '224'));
const python = opt('--python', process.env.M2T_BENCH_PYTHON ?? '/tmp/tv/bin/python');
const cores = os.availableParallelism();

interface Rate {
  perSecond: number;
  /** Images per CPU-second over the whole run (warm-up included): per-core efficiency,
   *  unaffected by other processes competing for the cores. */
  perCpuSecond: number;
}

async function ours(ds: Dataset, threads: number): Promise<Rate> {
  const cpu0 = process.cpuUsage();
  const loader = new PretrainLoader(ds, {
    batchSize: batch, threads, prefetch: 2 * threads + 2, seed: 1,
    view1: byolView1({ size }), view2: byolView2({ size }),
  });
  let seen = 0, t0 = 0, first = true;
  for (let epoch = 0; seen < images; epoch++) {
    for await (const b of loader.epoch(epoch)) {
      b.release();
      if (first) { first = false; t0 = performance.now(); continue; } // warm-up batch not timed
      seen += b.size;
      if (seen >= images) break;
    }
  }
  const rate = seen / ((performance.now() - t0) / 1000);
  loader.close();
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: rate, perCpuSecond: (seen + batch) / ((cpu.user + cpu.system) / 1e6) };
}

function torchvision(workers: number): Rate | undefined {
  if (!fs.existsSync(python)) return undefined;
  const r = spawnSync(python, [path.join(__dirname, 'bench_torchvision.py'), '--dir', dir, '--workers', String(workers),
    '--batch', String(batch), '--size', String(size), '--images', String(images)], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`torchvision benchmark failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return undefined;
  }
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { perSecond: j.images_per_s, perCpuSecond: j.images_per_cpu_s };
}

async function main(): Promise<void> {
  if (!fs.existsSync(dir)) {
    console.log(`generating 400 ImageNet-like JPEGs in ${dir} …`);
    await makeBenchFolder(dir, 400, 10);
  }
  const ds = await Dataset.openFolder(dir);
  let bytes = 0;
  for (let i = 0; i < ds.size; i++) bytes += fs.statSync(ds.path(i)).size;
  console.log(`${ds.size} JPEGs (mean ${(bytes / ds.size / 1024).toFixed(0)} kB) in ${dir}; two views at ${size} px, batch ${batch}, ${images} images timed; ${cores} cores (${os.cpus()[0]?.model ?? '?'})`);
  console.log(`load average before: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const rows: string[][] = [['threads / workers', 'ours img/s', 'torchvision img/s', 'ratio', 'ours img/CPU-s', 'torchvision img/CPU-s', 'ratio per core']];
  const f = (x?: number) => (x === undefined ? 'n/a' : x.toFixed(1));
  for (const n of [...new Set([1, cores])]) {
    const a = await ours(ds, n);
    const t = torchvision(n);
    rows.push([String(n), f(a.perSecond), f(t?.perSecond), t ? `${(a.perSecond / t.perSecond).toFixed(2)}x` : 'n/a',
      f(a.perCpuSecond), f(t?.perCpuSecond), t ? `${(a.perCpuSecond / t.perCpuSecond).toFixed(2)}x` : 'n/a']);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log(r.map((s, c) => s.padStart(w[c])).join('  '));
  console.log(`load average after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (other processes on the machine lower the img/s columns, not img/CPU-s)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

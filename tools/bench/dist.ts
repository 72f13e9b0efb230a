// Data-parallel CPU benchmark (npm run bench:dist): the same total batch in 1 process × 1 thread and in
// N processes × 1 thread (Gloo on loopback), and the time of one all-reduce of the student's whole
// gradient (what the step adds per iteration, not overlapped with the backward pass yet).
//   npm run bench:dist -- [--arch resnet18|resnet50] [--size 32] [--batch 64] [--nproc 2] [--budget 20]
import { spawn } from 'child_process';
import * as net from 'net';
import { ProcessGroup } from '../../lib/distributed/process-group';
import { Momentum2Teacher, type Arch } from '../../lib/engine';
import { syntheticBatch } from './inputs';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
};
const arch = arg('arch', 'resnet18') as Arch;
const size = Number(arg('size', arch === 'resnet18' ? '32' : '112'));
const batch = Number(arg('batch', arch === 'resnet18' ? '64' : '16'));
const nproc = Number(arg('nproc', '2'));
const budget = Number(arg('budget', '20'));
const smallStem = arch === 'resnet18';

/** One rank: steps for `budget` seconds on batch/world images; prints {ips, iters, allreduceMs, params}. */
async function rank(r: number, world: number, port: number): Promise<void> {
  const pg = world > 1 ? await ProcessGroup.connect({ rank: r, worldSize: world, host: '127.0.0.1', port }) : undefined;
  const m = new Momentum2Teacher({ arch, smallStem, threads: 1, totalIterations: 100000, processGroup: pg });
  const v1 = syntheticBatch(batch / world, size, 2 * r + 1), v2 = syntheticBatch(batch / world, size, 2 * r + 2);
  await m.step(v1, v2, 0.05); // warm-up
  let iters = 0;
  const t0 = performance.now();
  // Every rank runs the same number of steps: rank 0 decides when to stop through a 1-float all-reduce.
  for (;;) {
    await m.step(v1, v2, 0.05);
    iters++;
    const flag = new Float32Array([r === 0 && (performance.now() - t0) / 1000 >= budget && iters >= 2 ? 1 : 0]);
    if (pg) await pg.allreduceSum(flag);
    if (flag[0] > 0 || (!pg && (performance.now() - t0) / 1000 >= budget && iters >= 2)) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  const params = Object.entries(m.stateDict()).filter(([k]) => k.startsWith('student') && !/running_|num_batches/.test(k))
    .reduce((a, [, t]) => a + t.data.length, 0);
  let allreduceMs = 0;
  if (pg) {
    const g = new Float32Array(params);
    await pg.allreduceSum(g);
    const t1 = performance.now();
    for (let i = 0; i < 5; i++) await pg.allreduceSum(g);
    allreduceMs = (performance.now() - t1) / 5;
  }
  if (r === 0) console.log(JSON.stringify({ ips: (iters * batch) / seconds, iters, allreduceMs, params }));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function run(world: number): Promise<{ ips: number; iters: number; allreduceMs: number; params: number }> {
  const port = await freePort();
  const outs = await Promise.all([...Array(world).keys()].map((r) => new Promise<string>((resolve, reject) => {
    const c = spawn(process.execPath, [...process.execArgv, __filename, '--rank', String(r), '--world', String(world), '--port', String(port),
      ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`rank ${r} exited with ${code}`))));
  })));
  return JSON.parse(outs[0].trim().split('\n').pop()!);
}

async function main(): Promise<void> {
  if (process.argv.includes('--rank')) {
    return rank(Number(arg('rank', '0')), Number(arg('world', '1')), Number(arg('port', '0')));
  }
  console.log(`data-parallel CPU benchmark: ${arch}${smallStem ? ' small stem' : ''} ${size} px, total batch ${batch}, 1 thread per process, ~${budget} s each`);
  const one = await run(1);
  console.log(`1 process:   ${one.ips.toFixed(2)} img/s (${one.iters} steps)`);
  const many = await run(nproc);
  const stepMs = (1000 * batch) / many.ips;
  console.log(`${nproc} processes: ${many.ips.toFixed(2)} img/s (${many.iters} steps), ${(many.ips / one.ips).toFixed(2)}x`);
  console.log(`all-reduce of the student's gradient (${(many.params / 1e6).toFixed(2)} M floats): ${many.allreduceMs.toFixed(1)} ms, ` +
    `${((100 * many.allreduceMs) / stepMs).toFixed(1)} % of a ${nproc}-process step (${stepMs.toFixed(0)} ms)`);
}

main().catch((e) => { console.error(e); process.exit(1); });

// Data-parallel CPU benchmark (npm run bench:dist): the same total batch in 1 process × 1 thread and in
// N processes × 1 thread (sums through shared memory, or Gloo on loopback with M2T_SHM=0; gradient
// all-reduce bucketed and overlapped with the backward),
// and the communication the backward does not hide: the N-process step time minus the step time of N
// independent processes running the same per-rank batch at the same time without any communication (the
// same load on the cores, no all-reduce). Also the time of one blocking all-reduce of the whole gradient.
//   npm run bench:dist -- [--arch resnet18|resnet50] [--size 32] [--batch 64] [--nproc 2] [--budget 20] [--repeat 1]
import { spawn } from 'child_process';
import * as net from 'net';
import * as os from 'os';
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
const repeat = Number(arg('repeat', '1'));
const smallStem = arch === 'resnet18';

interface RankOut {
  ips: number; iters: number; stepMs: number; allreduceMs: number; waitMs: number; params: number; transport: string;
  /** CPU time of the whole process (all its threads) per step, and per blocking all-reduce. */
  cpuMs: number; allreduceCpuMs: number;
}

/** One rank: steps for `budget` seconds on `perRank` images; prints its RankOut. world 1 = no communication. */
async function rank(r: number, world: number, port: number, perRank: number): Promise<void> {
  const pg = world > 1 ? await ProcessGroup.connect({ rank: r, worldSize: world, host: '127.0.0.1', port }) : undefined;
  const m = new Momentum2Teacher({ arch, smallStem, threads: 1, totalIterations: 100000, processGroup: pg });
  const v1 = syntheticBatch(perRank, size, 2 * r + 1), v2 = syntheticBatch(perRank, size, 2 * r + 2);
  await m.step(v1, v2, 0.05); // warm-up
  let iters = 0, waited = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  // Every rank runs the same number of steps: rank 0 decides when to stop through a 1-float all-reduce.
  for (;;) {
    waited += (await m.step(v1, v2, 0.05)).commWait;
    iters++;
    const flag = new Float32Array([r === 0 && (performance.now() - t0) / 1000 >= budget && iters >= 2 ? 1 : 0]);
    if (pg) await pg.allreduceSum(flag);
    if (flag[0] > 0 || (!pg && (performance.now() - t0) / 1000 >= budget && iters >= 2)) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const params = Object.entries(m.stateDict()).filter(([k]) => k.startsWith('student') && !/running_|num_batches/.test(k))
    .reduce((a, [, t]) => a + t.data.length, 0);
  let allreduceMs = 0, allreduceCpuMs = 0;
  if (pg) {
    const g = new Float32Array(params);
    await pg.allreduceSum(g);
    const c1 = process.cpuUsage();
    const t1 = performance.now();
    for (let i = 0; i < 5; i++) await pg.allreduceSum(g);
    allreduceMs = (performance.now() - t1) / 5;
    const c = process.cpuUsage(c1);
    allreduceCpuMs = (c.user + c.system) / 1000 / 5;
  }
  const out: RankOut = { ips: (iters * perRank * world) / seconds, iters, stepMs: (1000 * seconds) / iters, allreduceMs,
    waitMs: (1000 * waited) / iters, params, cpuMs: (cpu.user + cpu.system) / 1000 / iters, allreduceCpuMs, transport: String((pg?.handle as { transport?: string } | undefined)?.transport ?? 'none') };
  console.log(JSON.stringify(out));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function spawnRank(r: number, world: number, port: number, perRank: number): Promise<RankOut> {
  return new Promise<RankOut>((resolve, reject) => {
    const c = spawn(process.execPath, [...process.execArgv, __filename, '--rank', String(r), '--world', String(world), '--port', String(port),
      '--per-rank', String(perRank), ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`rank ${r} exited with ${code}`))));
  });
}

/** `world` ranks of one group (world 1: a single process), rank 0's numbers. */
async function group(world: number): Promise<RankOut> {
  const port = await freePort();
  const outs = await Promise.all([...Array(world).keys()].map((r) => spawnRank(r, world, port, batch / world)));
  return outs[0];
}

/** `n` independent single processes at once, each on batch/n images: the N-process step without communication
 * (wall and CPU ms a step, mean over the processes). */
async function independent(n: number): Promise<{ stepMs: number; cpuMs: number }> {
  const outs = await Promise.all([...Array(n).keys()].map((r) => spawnRank(r, 1, 0, batch / n)));
  return { stepMs: outs.reduce((a, o) => a + o.stepMs, 0) / n, cpuMs: outs.reduce((a, o) => a + o.cpuMs, 0) / n };
}

const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  if (process.argv.includes('--rank')) {
    return rank(Number(arg('rank', '0')), Number(arg('world', '1')), Number(arg('port', '0')), Number(arg('per-rank', String(batch))));
  }
  if (batch % nproc !== 0) throw new Error(`--batch ${batch} is not a multiple of --nproc ${nproc}`);
  console.log(`data-parallel CPU benchmark: ${arch}${smallStem ? ' small stem' : ''} ${size} px, total batch ${batch}, 1 thread per process, ` +
    `~${budget} s each, ${os.cpus().length} cores`);
  for (let k = 0; k < repeat; k++) {
    if (repeat > 1) console.log(`-- run ${k + 1} of ${repeat}`);
    const l0 = load();
    const one = await group(1);
    const many = await group(nproc);
    const ind = await independent(nproc);
    const alone = ind.stepMs;
    const hiddenNot = many.stepMs - alone;
    console.log(`1 process:   ${one.ips.toFixed(2)} img/s (${one.iters} steps)  [load before: ${l0}]`);
    console.log(`${nproc} processes (sums over ${many.transport}): ${many.ips.toFixed(2)} img/s (${many.iters} steps, ${many.stepMs.toFixed(0)} ms a step), ` +
      `${(many.ips / one.ips).toFixed(2)}x  [load after: ${load()}]`);
    console.log(`${nproc} independent processes, ${batch / nproc} images each, no communication: ${alone.toFixed(0)} ms a step`);
    console.log(`communication not hidden by the backward: ${hiddenNot.toFixed(1)} ms a step, ${((100 * hiddenNot) / many.stepMs).toFixed(1)} % of the step ` +
      `(step time against the independent processes; includes contention for the cores)`);
    console.log(`the optimizer waited for the all-reduce after the backward (rank 0): ${many.waitMs.toFixed(1)} ms a step, ` +
      `${((100 * many.waitMs) / many.stepMs).toFixed(1)} % of the step`);
    console.log(`(one blocking all-reduce of the student's gradient, ${(many.params / 1e6).toFixed(2)} M floats: ${many.allreduceMs.toFixed(1)} ms, ` +
      `${((100 * many.allreduceMs) / many.stepMs).toFixed(1)} % of the step; ${many.allreduceCpuMs.toFixed(1)} CPU-ms in rank 0)`);
    // CPU time counts what each process computes (its communication threads too), not the time it waits
    // for a core: on a loaded machine these ratios stay put while the wall-clock ones above do not.
    console.log(`CPU a step: 1 process ${one.cpuMs.toFixed(0)} ms; ${nproc} processes ${many.cpuMs.toFixed(0)} ms each (rank 0); ` +
      `${nproc} independent ${ind.cpuMs.toFixed(0)} ms each. Speed-up if every process had its own core: ` +
      `${(one.cpuMs / many.cpuMs).toFixed(2)}x (independent: ${(one.cpuMs / ind.cpuMs).toFixed(2)}x); ` +
      `communication ${(many.cpuMs - ind.cpuMs).toFixed(0)} CPU-ms a step`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });

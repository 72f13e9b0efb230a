// Multi-process pre-training on CPU (Gloo on loopback), through mt-train as users start it: --nproc,
// the torchrun way (environment only), and the reference's MACHINE / MACHINE_TOTAL with --dist-url.
// Every rank ends with bitwise the same student parameters; a stopped and resumed distributed run ends
// bitwise where an uninterrupted one does, on every rank; a killed worker ends the run with its rank named.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readCheckpoint } from '../lib/engine';
import { DIST, dataLayerBuilt, requireDist, tmpDir } from './helpers/dist';
import { tinyPretrain } from './helpers/fixtures';
import { freePort } from './helpers/net';

const maybe = dataLayerBuilt() ? describe : describe.skip;
const MT_TRAIN = path.join(DIST, 'bin', 'mt-train.js');

interface Exit { code: number | null; signal: NodeJS.Signals | null; out: string; }

function mtTrain(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, onSpawn?: (pid: number) => void): Promise<Exit> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [MT_TRAIN, ...args], { cwd, env: { ...process.env, FORCE_COLOR: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    if (onSpawn && c.pid) onSpawn(c.pid);
    c.on('exit', (code, signal) => resolve({ code, signal, out }));
  });
}

/** Tensors of a checkpoint; `params` drops BN running statistics (per process by design). */
async function tensors(file: string, params = false): Promise<Record<string, Float32Array>> {
  const ck = await readCheckpoint(file);
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(ck.tensors)) {
    if (params && /running_|num_batches/.test(k)) continue;
    out[k] = (t as { data: Float32Array }).data;
  }
  return out;
}

function expectBitwiseEqual(a: Record<string, Float32Array>, b: Record<string, Float32Array>, what: string): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  const differing = Object.keys(a).filter((k) => !Buffer.from(a[k].buffer, a[k].byteOffset, a[k].byteLength)
    .equals(Buffer.from(b[k].buffer, b[k].byteOffset, b[k].byteLength)));
  expect({ what, differing }).toEqual({ what, differing: [] });
}

maybe('multi-process pre-training (CPU, Gloo)', () => {
  let dir: string;
  let exp: string;
  beforeAll(() => {
    requireDist(['bin/mt-train.js']);
    dir = tmpDir('m2t-dist-');
    exp = tinyPretrain(dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const ckpt = (name: string, rank = 0) => rank === 0
    ? path.join(dir, 'outputs', name, 'last_epoch_ckpt.safetensors')
    : path.join(dir, 'outputs', name, 'ranks', `rank${rank}`, 'last_epoch_ckpt.safetensors');

  test('mt-train --nproc 2: ranks agree bitwise; rank 0 alone writes the run\'s files', async () => {
    const port = await freePort();
    const r = await mtTrain(['-f', exp, '-d', 'cpu', '--nproc', '2', '--dist-url', `tcp://127.0.0.1:${port}`,
      '--experiment-name', 'np2', '--progress', 'none'], dir);
    expect(r).toMatchObject({ code: 0 });
    const log = fs.readFileSync(path.join(dir, 'outputs', 'np2', 'train_log.txt'), 'utf8');
    expect(log).toMatch(/2 processes \(4 images each per step\)/);
    expect(log.match(/Training start/g)).toHaveLength(1); // one writer
    expectBitwiseEqual(await tensors(ckpt('np2', 0), true), await tensors(ckpt('np2', 1), true), 'student/teacher parameters of rank 0 and 1');
    const metrics = fs.readFileSync(path.join(dir, 'outputs', 'np2', 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(metrics).toHaveLength(8); // 2 epochs × 4 iterations, once
  });

  test('the torchrun way (environment only) and two launchers with MACHINE / MACHINE_TOTAL give the same run', async () => {
    const p1 = await freePort();
    const base = ['-f', exp, '-d', 'cpu', '--progress', 'none'];
    const torchrun = await Promise.all([0, 1].map((rank) => mtTrain([...base, '--experiment-name', 'tr'], dir, {
      RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: '0', LOCAL_WORLD_SIZE: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(p1),
    })));
    for (const r of torchrun) expect(r).toMatchObject({ code: 0 });
    const p2 = await freePort();
    const machines = await Promise.all([0, 1].map((m) => mtTrain([...base, '--experiment-name', 'mm', '--dist-url', `tcp://127.0.0.1:${p2}`], dir, {
      MACHINE: String(m), MACHINE_TOTAL: '2',
    })));
    for (const r of machines) expect(r).toMatchObject({ code: 0 });
    // Both start 2 ranks of 1 process per machine: the same ranks, the same data shards, the same weights.
    for (const rank of [0, 1]) expectBitwiseEqual(await tensors(ckpt('tr', rank)), await tensors(ckpt('mm', rank)), `rank ${rank}`);
  });

  test('Ctrl-C to the launcher stops every rank at one iteration; resumed, the run ends bitwise where an uninterrupted one does', async () => {
    const exp4 = tinyPretrain(path.join(dir, 'four'), { maxEpoch: 4 });
    const run = async (name: string, extra: string[], onSpawn?: (pid: number) => void) => {
      const port = await freePort();
      return mtTrain(['-f', exp4, '-d', 'cpu', '--nproc', '2', '--dist-url', `tcp://127.0.0.1:${port}`, '--experiment-name', name,
        '--progress', 'none', ...extra], dir, {}, onSpawn);
    };
    expect(await run('whole', [])).toMatchObject({ code: 0 });
    let launcher = 0;
    const stopping = run('parts', [], (pid) => { launcher = pid; });
    const metrics = path.join(dir, 'outputs', 'parts', 'metrics.jsonl');
    const t0 = Date.now();
    while (!(fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').split('\n').length > 3) && Date.now() - t0 < 60000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(launcher, 'SIGINT');
    const stopped = await stopping;
    expect(stopped.code).toBe(130);
    const meta = (await readCheckpoint(path.join(dir, 'outputs', 'parts', 'interrupted_ckpt.safetensors'))).metadata;
    const meta1 = (await readCheckpoint(path.join(dir, 'outputs', 'parts', 'ranks', 'rank1', 'interrupted_ckpt.safetensors'))).metadata;
    expect(Number(meta['run.iteration'])).toBeLessThan(16);
    expect(meta1['run.iteration']).toBe(meta['run.iteration']); // both ranks stopped after the same iteration
    // Resuming with another number of processes is refused, naming both.
    const port = await freePort();
    const other = await mtTrain(['-f', exp4, '-d', 'cpu', '--experiment-name', 'parts', '--resume', '--progress', 'none',
      '--dist-url', `tcp://127.0.0.1:${port}`], dir);
    expect(other.code).not.toBe(0);
    expect(other.out).toMatch(/written by a run of 2 process\(es\), this one has 1/);
    expect(await run('parts', ['--resume'])).toMatchObject({ code: 0 });
    for (const rank of [0, 1]) expectBitwiseEqual(await tensors(ckpt('parts', rank)), await tensors(ckpt('whole', rank)), `rank ${rank} after resume`);
  }, 180000);

  test('kill -9 of one worker: the launcher and the other worker exit non-zero, naming the rank', async () => {
    const port = await freePort();
    const t0 = Date.now();
    let launcher = 0;
    const done = mtTrain(['-f', tinyPretrain(path.join(dir, 'long'), { maxEpoch: 50 }), '-d', 'cpu', '--nproc', '2',
      '--dist-url', `tcp://127.0.0.1:${port}`, '--experiment-name', 'killed', '--progress', 'plain'], dir, {}, (pid) => { launcher = pid; });
    // Wait until training runs, then kill rank 1's process.
    const log = path.join(dir, 'outputs', 'killed', 'metrics.jsonl');
    while (!(fs.existsSync(log) && fs.readFileSync(log, 'utf8').split('\n').length > 3) && Date.now() - t0 < 60000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const workers = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(launcher); } catch { return false; }
    });
    const rank1 = workers.find((p) => fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes('RANK=1'));
    expect(rank1).toBeDefined();
    const tKill = Date.now();
    process.kill(Number(rank1), 'SIGKILL');
    const r = await done;
    expect(Date.now() - tKill).toBeLessThan(60000);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/rank 1 \(local 1\) was killed by SIGKILL/);
    // Whatever checkpoint exists is whole (written atomically before the kill, or not at all).
    if (fs.existsSync(ckpt('killed'))) await expect(readCheckpoint(ckpt('killed'))).resolves.toBeDefined();
  }, 180000);

  test('rank 0 setting up and writing its checkpoint for longer than the group timeout is not a failure (the ranks keep answering)', async () => {
    // Group timeout 1.5 s; rank 0 opens its data 4 s late and takes 4 s more for its first epoch checkpoint. A plain
    // collective wait (the first step's all-reduce, a barrier) with this timeout would fail the run.
    const sub = tmpDir('m2t-dist-slow-');
    const file = tinyPretrain(sub);
    const script = path.join(sub, 'rank.js');
    fs.writeFileSync(script, `
      const m = require(${JSON.stringify(path.join(DIST, 'lib', 'index.js'))});
      const rank = Number(process.argv[2]), port = Number(process.argv[3]);
      const late = (f) => { let once = rank === 0; return async (...a) => { if (once) await new Promise((r) => setTimeout(r, 4000)); once = false; return f(...a); }; };
      (async () => {
        const pg = await m.ProcessGroup.connect({ rank, worldSize: 2, host: '127.0.0.1', port, timeoutMs: 1500 });
        const data = m.dataProvider();
        data.openPretrain = late(data.openPretrain.bind(data));
        const createModel = (cfg) => {
          const t = new m.Momentum2Teacher({ ...cfg, processGroup: pg });
          return { step: (a, b, lr) => t.step(a, b, lr), get iteration() { return t.iteration; }, save: late((f, md) => t.save(f, md)), load: (f) => t.load(f) };
        };
        const r = await m.pretrain({ experiment: ${JSON.stringify(file)}, outputDir: ${JSON.stringify(path.join(sub, 'outputs'))}, name: 'slow', processGroup: pg, data, createModel });
        console.log(JSON.stringify({ iterations: r.iterations, epochs: r.epochsCompleted }));
        process.exit(0);
      })().catch((e) => { console.log(e.message); process.exit(1); });`);
    try {
      const port = await freePort();
      const t0 = Date.now();
      const ranks = await Promise.all([0, 1].map((rank) => new Promise<Exit>((resolve) => {
        const c = spawn(process.execPath, [script, String(rank), String(port)], { cwd: sub, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout.on('data', (d) => { out += d; });
        c.stderr.on('data', (d) => { out += d; });
        c.on('exit', (code, signal) => resolve({ code, signal, out }));
      })));
      for (const r of ranks) expect({ code: r.code, out: r.out.trim() }).toEqual({ code: 0, out: '{"iterations":8,"epochs":2}' });
      expect(Date.now() - t0).toBeGreaterThan(8000); // both waits happened
    } finally {
      fs.rmSync(sub, { recursive: true, force: true });
    }
  });
});

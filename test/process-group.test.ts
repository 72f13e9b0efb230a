// ProcessGroup across real processes on loopback: sums equal the per-rank inputs added up, and a rank
// that dies, or a rendezvous that cannot complete, ends every other rank with an error instead of a hang.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { addonBuilt, DIST, requireDist } from './helpers/dist';
import { freePort } from './helpers/net';

const maybe = addonBuilt() ? describe : describe.skip;

// A rank: connects, then runs `body` (JS source with pg, rank, world in scope), prints one JSON line.
const RANK_SCRIPT = `
const { ProcessGroup } = require(${JSON.stringify(path.join(DIST, 'lib', 'distributed', 'process-group.js'))});
const [rank, world, port, timeoutMs] = process.argv.slice(2).map(Number);
const body = new Function('pg', 'rank', 'world', 'return (async () => {' + process.env.RANK_BODY + '})()');
ProcessGroup.connect({ rank, worldSize: world, host: '127.0.0.1', port, timeoutMs })
  .then((pg) => body(pg, rank, world))
  .then((r) => { console.log(JSON.stringify({ ok: r })); process.exit(0); },
        (e) => { console.log(JSON.stringify({ error: e.message, name: e.name })); process.exit(1); });
`;

interface RankResult { code: number | null; signal: NodeJS.Signals | null; out: any; ms: number; }

function runRanks(ranks: number[], world: number, port: number, body: string, timeoutMs = 20000,
  env: NodeJS.ProcessEnv = {}): Promise<RankResult[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-pg-'));
  const script = path.join(dir, 'rank.js');
  fs.writeFileSync(script, RANK_SCRIPT);
  const t0 = Date.now();
  return Promise.all(ranks.map((r) => new Promise<RankResult>((resolve) => {
    const child = spawn(process.execPath, [script, String(r), String(world), String(port), String(timeoutMs)], {
      env: { ...process.env, ...env, RANK_BODY: body }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code, signal) => {
      let parsed: any = out;
      try { parsed = JSON.parse(out.trim().split('\n').pop() ?? ''); } catch { /* raw text */ }
      resolve({ code, signal, out: parsed, ms: Date.now() - t0 });
    });
  }))).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

maybe('ProcessGroup (shared memory on one machine, Gloo over TCP with M2T_SHM=0; separate processes)', () => {
  beforeAll(() => requireDist(['lib/distributed/process-group.js']));

  test('all-reduce sums and means every rank\'s data, repeatedly', async () => {
    const world = 3, port = await freePort();
    const body = `
      const n = 4099, sums = [], means = [];
      for (let rep = 0; rep < 3; rep++) {
        const x = Float32Array.from({ length: n }, (_, i) => (rank + 1) * (i % 97) + rep);
        await pg.allreduceSum(x);
        sums.push(Array.from(x.subarray(0, 5)).concat([x[n - 1]]));
      }
      const y = new Float32Array(8).fill(rank);
      await pg.allreduceMean(y);
      await pg.barrier();
      return { sums, mean: y[0], rank: pg.rank, world: pg.worldSize, transport: pg.handle.transport };`;
    const res = await runRanks([0, 1, 2], world, port, body);
    const n = 4099;
    for (const [r, x] of res.entries()) {
      expect({ r, code: x.code }).toEqual({ r, code: 0 });
      expect(x.out.ok.rank).toBe(r);
      expect(x.out.ok.world).toBe(world);
      expect(x.out.ok.transport).toBe('shm'); // all ranks on this machine
      for (let rep = 0; rep < 3; rep++) {
        // Σ_r (r+1)·(i mod 97) + rep = 6·(i mod 97) + 3·rep
        const want = [0, 1, 2, 3, 4].map((i) => 6 * (i % 97) + 3 * rep).concat([6 * ((n - 1) % 97) + 3 * rep]);
        expect(x.out.ok.sums[rep]).toEqual(want);
      }
      expect(x.out.ok.mean).toBeCloseTo(1, 6); // (0 + 1 + 2) / 3
    }
  });

  test.each([['shm', '1'], ['tcp', '0']])('a rank killed with SIGKILL makes the others fail, not hang (%s)', async (transport, shm) => {
    const port = await freePort();
    const body = `
      if (pg.transport !== '${transport}') throw new Error('transport ' + pg.transport);
      if (rank === 1) process.kill(process.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      await pg.allreduceSum(new Float32Array(1 << 16));
      return 'finished';`;
    const res = await runRanks([0, 1, 2], 3, port, body, 5000, { M2T_SHM: shm });
    expect(res[1].signal).toBe('SIGKILL');
    for (const r of [0, 2]) {
      expect(res[r].code).toBe(1);
      expect(res[r].out.error).toMatch(new RegExp(`rank ${r}: all-reduce`));
      if (transport === 'shm') expect(res[r].out.error).toMatch(/rank 1 \(pid \d+\) died/);
      expect(res[r].ms).toBeLessThan(15000);
    }
  });

  test('whileWorking: rank 0 working alone for 3 group timeouts is not a failure; its result comes back on every rank', async () => {
    // Group timeout 1.5 s; rank 0 works 4.5 s (rank 2 for 300 ms) while the ranks keep answering each other.
    // A plain wait (the old long barrier, or any collective) with this timeout would fail here.
    const port = await freePort();
    const body = `
      const ms = rank === 0 ? 4500 : rank === 2 ? 300 : 0;
      const t0 = Date.now();
      const v = await pg.whileWorking(() => new Promise((r) => setTimeout(() => r(rank * 10), ms)));
      const x = new Float32Array([1]);
      await pg.allreduceSum(x); // the group is still in step afterwards
      return { v, waited: Date.now() - t0, sum: x[0] };`;
    const res = await runRanks([0, 1, 2], 3, port, body, 1500);
    for (const [r, x] of res.entries()) {
      expect({ r, code: x.code, v: x.out.ok?.v, sum: x.out.ok?.sum }).toEqual({ r, code: 0, v: r * 10, sum: 3 });
      expect(x.out.ok.waited).toBeGreaterThanOrEqual(4400); // every rank returned after rank 0 was done
    }
  });

  test('whileWorking: a rank that stops answering (busy, not dead) fails the others within the group timeout', async () => {
    // Rank 1 blocks its event loop for 5 s (as a stopped or hung process would): its sockets stay open,
    // so only the timeout (1 s) can tell; rank 0 must fail long before rank 1 is done.
    const port = await freePort();
    const body = `
      const t0 = Date.now();
      try {
        await pg.whileWorking(async () => { if (rank === 1) { const end = Date.now() + 5000; while (Date.now() < end); } });
      } catch (e) { return { error: e.message, ms: Date.now() - t0 }; }
      return { ms: Date.now() - t0 };`;
    const res = await runRanks([0, 1], 2, port, body, 1000);
    expect(res[0].out.ok.error).toMatch(/rank 0: .*rank 1 (died or hung|did not reach it)/); // TCP or shared memory
    expect(res[0].out.ok.ms).toBeLessThan(4000);
  });

  test('whileWorking: a rank whose work throws rethrows it; the others fail naming it', async () => {
    const port = await freePort();
    const body = `
      try {
        await pg.whileWorking(async () => { if (rank === 1) throw new Error('eval failed'); await new Promise((r) => setTimeout(r, 300)); });
      } catch (e) { if (rank === 1) process.exit(3); return { error: e.message }; }
      return 'finished';`;
    const res = await runRanks([0, 1], 2, port, body, 5000);
    expect(res[1].code).toBe(3);
    expect(res[0].out.ok.error).toMatch(/rank 1 (died or hung|\(pid \d+\) died|left the group)/); // TCP or shared memory
  });

  test.each([['shm', '1'], ['tcp', '0']])('a stopped rank (SIGSTOP) fails the others within the timeout (%s)', async (transport, shm) => {
    const port = await freePort();
    // The ranks swap pids first, so rank 0 can end the stopped rank once its sum has failed.
    const body = `
      if (pg.transport !== '${transport}') throw new Error('transport ' + pg.transport);
      const pids = new Float32Array(2);
      pids[rank] = process.pid;
      await pg.allreduceSum(pids);
      if (rank === 1) process.kill(process.pid, 'SIGSTOP');
      const t0 = Date.now();
      try { await pg.allreduceSum(new Float32Array(1 << 16)); } catch (e) {
        process.kill(pids[1], 'SIGKILL');
        return { error: e.message, ms: Date.now() - t0 };
      }
      return 'finished';`;
    const res = await runRanks([0, 1], 2, port, body, 1500, { M2T_SHM: shm });
    expect(res[1].signal).toBe('SIGKILL');
    expect(res[0].code).toBe(0);
    expect(res[0].out.ok.error).toMatch(/rank 0: all-reduce/);
    expect(res[0].out.ok.error).toMatch(/rank 1/);
    expect(res[0].out.ok.ms).toBeGreaterThanOrEqual(1400);
    expect(res[0].out.ok.ms).toBeLessThan(10000);
  });

  test('a rendezvous that cannot complete times out naming the address', async () => {
    const port = await freePort();
    const res = await runRanks([1], 2, port, 'return 1;', 1000); // rank 0 never starts
    expect(res[0].code).toBe(1);
    expect(res[0].out.error).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}`));
    expect(res[0].ms).toBeLessThan(10000);
  });

  test('bad options are errors naming the option', () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { ProcessGroup } = require(path.join(DIST, 'lib', 'distributed', 'process-group.js'));
    return Promise.all([
      expect(ProcessGroup.connect({ rank: 2, worldSize: 2, host: '127.0.0.1', port: 1 })).rejects.toThrow(/rank/),
      expect(ProcessGroup.connect({ rank: 0, worldSize: 1, host: '127.0.0.1', port: 70000 })).rejects.toThrow(/port/),
      expect(ProcessGroup.connect({ rank: 0, worldSize: 1, host: '127.0.0.1', port: 1, extra: 1 })).rejects.toThrow(/extra/),
    ]);
  });
});

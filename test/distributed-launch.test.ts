// The local launcher: workers get their rank's environment; one failing worker stops the others and is
// named; a worker that ignores SIGTERM is killed after the grace period. Then the whole path: launched
// workers resolve their context from the environment alone and all-reduce over a ProcessGroup.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveRole, type Role } from '../lib/distributed/context';
import { launchWorkers } from '../lib/distributed/launch';
import { addonBuilt, DIST, requireDist } from './helpers/dist';
import { freePort } from './helpers/net';

function launcher(local: number, env: Record<string, string> = {}, distUrl?: string): Extract<Role, { kind: 'launcher' }> {
  const r = resolveRole({ localDevices: local, env, distUrl });
  if (r.kind !== 'launcher') throw new Error('expected a launcher role');
  return r;
}

const node = (code: string) => ({ command: process.execPath, args: ['-e', code], stdio: 'pipe' as const });

describe('launchWorkers', () => {
  test('every worker gets its rank\'s torchrun variables', async () => {
    const role = launcher(3, { MACHINE: '1', MACHINE_TOTAL: '2' }, 'tcp://127.0.0.1:29555');
    const r = await launchWorkers(role, node(
      'const e = process.env; console.log([e.RANK, e.WORLD_SIZE, e.LOCAL_RANK, e.LOCAL_WORLD_SIZE, e.MASTER_ADDR, e.MASTER_PORT].join(" "))'));
    expect(r.exitCode).toBe(0);
    expect(r.outputs.map((s) => s.trim())).toEqual([
      '3 6 0 3 127.0.0.1 29555', '4 6 1 3 127.0.0.1 29555', '5 6 2 3 127.0.0.1 29555']);
  });

  test('a failing worker stops the others and is named', async () => {
    const t0 = Date.now();
    const r = await launchWorkers(launcher(3), node(
      'if (process.env.LOCAL_RANK === "1") setTimeout(() => process.exit(3), 100); else setTimeout(() => {}, 60000);'));
    expect(Date.now() - t0).toBeLessThan(10000);
    expect(r.exitCode).toBe(3);
    expect(r.firstFailure).toMatchObject({ rank: 1, code: 3 });
    expect(r.message).toMatch(/rank 1 \(local 1\) exited with code 3/);
    expect(r.exits.filter((e) => e.rank !== 1).map((e) => e.signal)).toEqual(['SIGTERM', 'SIGTERM']);
  });

  test('Ctrl-C: a worker that stops first does not cut short a peer still saving (no second signal)', async () => {
    // Each worker says it is ready once its SIGINT handler is in; on SIGINT, worker 0 exits 130 at once,
    // worker 1 "saves" for 500 ms first; a second signal would make it exit 7 (what mt-train does: exit now).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-launch-'));
    const launched = launchWorkers(launcher(2), node(
      'const fs = require("fs"); let n = 0; const h = () => { if (++n > 1) process.exit(7);' +
      ' setTimeout(() => process.exit(130), process.env.LOCAL_RANK === "1" ? 500 : 0); };' +
      ' process.on("SIGINT", h); process.on("SIGTERM", h);' +
      ` fs.writeFileSync(require("path").join(${JSON.stringify(dir)}, process.env.LOCAL_RANK), "");` +
      ' setInterval(() => {}, 1000);'));
    const t0 = Date.now();
    while (fs.readdirSync(dir).length < 2 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 10));
    process.emit('SIGINT');
    const r = await launched;
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.exits.map((e) => e.code)).toEqual([130, 130]);
    expect(r.exitCode).toBe(130);
  });

  test('kill -9 of a worker; a worker that ignores SIGTERM is killed after the grace period', async () => {
    // Worker 1 ignores SIGTERM and says so through a file; only then does worker 0 kill itself.
    const ready = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-launch-')), 'ready');
    const t0 = Date.now();
    const r = await launchWorkers(launcher(2), { ...node(
      'const fs = require("fs"); process.on("SIGTERM", () => {});' +
      ` if (process.env.LOCAL_RANK === "1") fs.writeFileSync(${JSON.stringify(ready)}, "");` +
      ` else setInterval(() => fs.existsSync(${JSON.stringify(ready)}) && process.kill(process.pid, "SIGKILL"), 20);` +
      ' setInterval(() => {}, 1000);'), graceMs: 500 });
    fs.rmSync(path.dirname(ready), { recursive: true, force: true });
    expect(Date.now() - t0).toBeLessThan(10000);
    expect(r.firstFailure).toMatchObject({ rank: 0, signal: 'SIGKILL' });
    expect(r.exits[1].signal).toBe('SIGKILL');
    expect(r.exitCode).toBe(1);
    expect(r.message).toMatch(/rank 0 \(local 0\) was killed by SIGKILL/);
  });

  test('a stopped (hung) worker is killed at once, not after the grace period, and named as the cause', async () => {
    // Worker 1 stops itself (SIGSTOP: it can act on nothing but SIGKILL); then worker 0 fails, as its
    // collective would once the group timeout passed. Grace 30 s: only the stopped-worker check is quick.
    const t0 = Date.now();
    const r = await launchWorkers(launcher(2), { ...node(
      'if (process.env.LOCAL_RANK === "1") process.kill(process.pid, "SIGSTOP");' +
      ' else setTimeout(() => process.exit(1), 1500); setInterval(() => {}, 1000);'), graceMs: 30000 });
    expect(Date.now() - t0).toBeLessThan(10000);
    expect(r.exits.map((e) => [e.code, e.signal])).toEqual([[1, null], [null, 'SIGKILL']]);
    expect(r.firstFailure).toMatchObject({ rank: 1, signal: 'SIGKILL' });
    expect(r.exitCode).toBe(1);
    expect(r.message).toMatch(/^rank 1 \(local 1\) was stopped \(hung.*; rank 0 \(local 0\) exited with code 1;/);
  });

  test('a worker still running after the grace period is killed and named as hung', async () => {
    const t0 = Date.now();
    const r = await launchWorkers(launcher(2), { ...node(
      'process.on("SIGTERM", () => {}); if (process.env.LOCAL_RANK === "0") setTimeout(() => process.exit(1), 300);' +
      ' setInterval(() => {}, 1000);'), graceMs: 500 });
    expect(Date.now() - t0).toBeLessThan(10000);
    expect(r.message).toMatch(/^rank 0 \(local 0\) exited with code 1; rank 1 \(local 1\) did not exit within 0\.5 s of SIGTERM \(hung\?\) and was killed;/);
  });
});

(addonBuilt() ? describe : describe.skip)('launched workers all-reduce through a ProcessGroup', () => {
  test('each worker resolves its rank from the environment alone and gets the sum', async () => {
    requireDist(['lib/distributed/process-group.js', 'lib/distributed/context.js']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-launch-'));
    const script = path.join(dir, 'worker.js');
    fs.writeFileSync(script, `
      const { resolveRole } = require(${JSON.stringify(path.join(DIST, 'lib', 'distributed', 'context.js'))});
      const { ProcessGroup } = require(${JSON.stringify(path.join(DIST, 'lib', 'distributed', 'process-group.js'))});
      const role = resolveRole({ localDevices: 1 });
      ProcessGroup.fromContext(role.context, 20000).then(async (pg) => {
        const x = new Float32Array([pg.rank + 1, 10 * (pg.rank + 1)]);
        await pg.allreduceSum(x);
        console.log(role.context.source, pg.rank, pg.worldSize, x[0], x[1]);
      }).catch((e) => { console.error(e.message); process.exit(1); });`);
    try {
      const port = await freePort();
      const r = await launchWorkers(launcher(3, {}, `tcp://127.0.0.1:${port}`), { command: process.execPath, args: [script], stdio: 'pipe' });
      expect(r.outputs.map((s) => s.trim())).toEqual(['torchrun 0 3 6 60', 'torchrun 1 3 6 60', 'torchrun 2 3 6 60']);
      expect(r.exitCode).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

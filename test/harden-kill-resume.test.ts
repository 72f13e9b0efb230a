// Standing guard (issue 13): kill -9 at ≥ 10 random points of a tiny pre-training run —
// some at random times, some the moment a checkpoint write has begun — resuming after each.
// After every kill each checkpoint in the folder must read completely (0 torn); the stale
// lock and temp files of the killed run must not stop the next; and the final weights must be
// bitwise those of an uninterrupted run.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FILES, readRunState } from '../lib/checkpoint';
import { readCheckpoint } from '../lib/engine';
import { DIST, requireDist, tmpDir, writeFile } from './helpers/dist';

const made: string[] = [];
const mk = (prefix: string) => {
  const d = tmpDir(prefix);
  made.push(d);
  return d;
};
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

beforeAll(() => requireDist(['bin/mt-train.js']));

const KILLS = 12;
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

function experiment(dir: string): string {
  return writeFile(
    path.join(dir, 'k9.ts'),
    `import { pretrainBase } from 'momentum2-teacher';
export default pretrainBase.extend({
  name: 'k9', batchSize: 8, maxEpoch: 6, warmupEpochs: 1, threads: 1, printInterval: 2,
  model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 64, outDim: 32 },
  data: { train: { kind: 'synthetic', size: 32, numClasses: 4, imageSize: 36 }, imageSize: 32, workers: 1 },
});
`,
  );
}

function start(exp: string, out: string, resume: boolean): ChildProcess {
  const args = [path.join(DIST, 'bin', 'mt-train.js'), '-f', exp, '--output-dir', out, '--progress', 'none'];
  if (resume) args.push('--resume');
  return spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Runs until exit, or kills it (-9) after `ms` or as soon as a checkpoint temp file of it appears. */
function runAndKill(child: ChildProcess, runDir: string, how: { ms: number } | 'write'): Promise<{ killed: boolean; code: number | null; stderr: string; atWrite: boolean }> {
  return new Promise((resolve) => {
    let stderr = '';
    let killed = false;
    let atWrite = false;
    child.stderr!.on('data', (d) => (stderr += d));
    const kill = (write: boolean) => {
      if (killed || child.exitCode !== null) return;
      killed = true;
      atWrite = write;
      child.kill('SIGKILL');
    };
    const timers: NodeJS.Timeout[] = [];
    let watcher: fs.FSWatcher | undefined;
    if (how === 'write') {
      const tmpName = `.safetensors.tmp-${child.pid}`;
      const attach = () => {
        if (watcher || !fs.existsSync(runDir)) return;
        watcher = fs.watch(runDir, (_e, name) => {
          if (name && String(name).endsWith(tmpName)) kill(true);
        });
      };
      attach();
      timers.push(setInterval(attach, 5));
    } else {
      timers.push(setTimeout(() => kill(false), how.ms));
    }
    child.on('exit', (code) => {
      timers.forEach(clearTimeout);
      timers.forEach(clearInterval);
      watcher?.close();
      resolve({ killed, code, stderr, atWrite });
    });
  });
}

async function tensors(file: string): Promise<Map<string, Buffer>> {
  const c = await readCheckpoint(file);
  return new Map(Object.entries(c.tensors).map(([k, t]) => [k, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
}

test(`kill -9 at ${KILLS} points, resume after each: no torn checkpoint, final weights bitwise equal`, async () => {
  const dir = mk('m2t-k9-');
  const exp = experiment(dir);

  // The uninterrupted run.
  const refOut = path.join(dir, 'ref');
  const t0 = Date.now();
  const ref = await runAndKill(start(exp, refOut, false), path.join(refOut, 'k9'), { ms: 600_000 });
  expect(ref.stderr).toBe('');
  expect(ref.code).toBe(0);
  const want = await tensors(path.join(refOut, 'k9', FILES.lastEpoch));
  const refMs = Date.now() - t0;

  const out = path.join(dir, 'killed');
  const runDir = path.join(out, 'k9');
  let endedBy = '';
  let kills = 0, atWrite = 0, torn = 0, checked = 0, staleTmpSeen = 0, finished = false;
  for (let attempt = 0; !finished && attempt < 60; attempt++) {
    const resume = fs.existsSync(path.join(runDir, FILES.lastEpoch));
    if (resume && readRunState(path.join(runDir, FILES.lastEpoch)).iteration === 24) {
      // A killed run got to its final checkpoint: the chain is complete.
      if (kills >= KILLS) {
        // A last --resume says so, and takes over (and clears) what the killed run left.
        const last = await runAndKill(start(exp, out, true), runDir, { ms: 600_000 });
        endedBy = 'a killed run had written the final checkpoint; --resume found nothing to resume';
        expect(last.stderr).toMatch(/nothing to resume: .* is at the end of training \(iteration 24\/24\)/);
        finished = true;
        break;
      }
      fs.rmSync(runDir, { recursive: true });
      continue;
    }
    const how = kills >= KILLS ? { ms: 600_000 } : kills % 3 === 2 ? ('write' as const) : { ms: 200 + Math.floor(rand() * 0.8 * refMs) };
    const r = await runAndKill(start(exp, out, resume), runDir, how);
    if (r.killed) {
      kills++;
      if (r.atWrite) atWrite++;
      const names = fs.existsSync(runDir) ? fs.readdirSync(runDir) : [];
      staleTmpSeen += names.filter((n) => /\.tmp-\d+$/.test(n)).length;
      for (const n of names.filter((x) => x.endsWith('.safetensors'))) {
        checked++;
        try {
          readRunState(path.join(runDir, n));
          await readCheckpoint(path.join(runDir, n));
        } catch {
          torn++;
        }
      }
    } else {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      if (kills >= KILLS) {
        finished = true;
        endedBy = 'a run completed';
      }
      else fs.rmSync(runDir, { recursive: true }); // finished before its kill: start the chain over
    }
  }
  console.log(`kill -9 loop: ${kills} kills (${atWrite} during a checkpoint write), ${checked} checkpoint reads after kills, ${torn} torn, ${staleTmpSeen} temp files left by killed writers; ended: ${endedBy}`);
  expect(finished).toBe(true);
  expect(kills).toBeGreaterThanOrEqual(KILLS);
  expect(atWrite).toBeGreaterThanOrEqual(1);
  expect(torn).toBe(0);
  // The last run cleaned up after the killed ones: no temp files, no lock.
  expect(fs.readdirSync(runDir).filter((n) => n.includes('.tmp-') || n.includes('.lock'))).toEqual([]);
  const got = await tensors(path.join(runDir, FILES.lastEpoch));
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [k, b] of want) expect(got.get(k)!.equals(b)).toBe(true);
  expect(readRunState(path.join(runDir, FILES.lastEpoch)).iteration).toBe(24);
}, 600_000);

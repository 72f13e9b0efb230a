// Kill and hang trials for multi-process training (issue 11: "one rank killed or hung → every rank exits
// non-zero within 60 s with a message naming the rank, 10 of 10 trials"). Each trial starts a 2-process CPU
// run of a tiny experiment, waits until it trains, then sends one worker SIGKILL (killed) or SIGSTOP (hung:
// its sockets stay open, it just stops answering) at a random moment (mid-step, mid-all-reduce, at an
// epoch's end) and checks that the run is gone within 60 s, non-zero, and that the output names that rank.
// Trials alternate between the two ways a run starts:
//   launcher  mt-train --nproc 2: the launcher sees the death ("rank R (local R) was killed by SIGKILL"), or,
//             once the survivor gave up on its stopped peer (--dist-timeout), finds it stopped, kills it and
//             names it ("rank R (local R) was stopped (hung…"); every process must be gone;
//   env       two workers started the torchrun way (RANK/WORLD_SIZE/MASTER_*), no launcher: the survivor
//             finds out through its collectives, and its error must name the rank it lost. A stopped
//             worker cannot exit: here, as torchrun's agent would, the trial kills it once the survivor is gone.
// Run: npx tsx tools/distributed/kill-trials.ts [--trials 10] [--signal KILL|STOP] [--dist-timeout <s>]
//   (needs `npm run build:ts`: it runs dist/bin/mt-train.js; without --dist-timeout the runs use the default)
// test/distributed-kill.test.ts runs a few trials of the same function.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

export type TrialSignal = 'KILL' | 'STOP';

export interface Trial {
  trial: number;
  mode: 'launcher' | 'env';
  signal: TrialSignal;
  killedRank: number;
  /** From the signal until the last process of the run was gone (env + STOP: but the stopped one). */
  exitMs: number;
  codes: (number | null)[];
  problems: string[];
}

const ROOT = path.resolve(__dirname, '..', '..');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function experiment(dir: string): string {
  const f = path.join(dir, 'kill_trials_exp.ts');
  fs.writeFileSync(f, `import { pretrainBase } from 'momentum2-teacher';
export default pretrainBase.extend({
  batchSize: 8, maxEpoch: 1000, warmupEpochs: 1, threads: 1, printInterval: 1,
  model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 64, outDim: 32 },
  data: { train: { kind: 'synthetic', size: 64, numClasses: 4, imageSize: 36 }, imageSize: 32, workers: 1 },
});
`);
  return f;
}

interface Proc { child: ChildProcess; out: string; code?: number | null; exited: Promise<void>; }

function start(mtTrain: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [mtTrain, ...args], { cwd, env: { ...process.env, FORCE_COLOR: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', exited: Promise.resolve() };
  child.stdout!.on('data', (d) => { p.out += d; });
  child.stderr!.on('data', (d) => { p.out += d; });
  p.exited = new Promise((resolve) => child.on('exit', (code, signal) => { p.code = code ?? (signal ? null : code); resolve(); }));
  return p;
}

/** Live pids whose parent is `ppid`. */
function childrenOf(ppid: number): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(ppid); } catch { return false; }
  }).map(Number);
}

function alive(pid: number): boolean {
  try {
    // A zombie has exited; only its parent has not collected it yet.
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z';
  } catch { return false; }
}

function rankOf(pid: number): number {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('RANK='));
    return env ? Number(env.slice(5)) : -1;
  } catch { return -1; }
}

async function waitForTraining(metrics: string, procs: Proc[], timeoutMs: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').split('\n').length > 2) return true;
    if (procs.some((p) => p.code !== undefined)) return false;
    await sleep(50);
  }
  return false;
}

export async function killTrials(o: {
  trials: number; dir?: string; log?: (s: string) => void; limitMs?: number;
  /** KILL (default) or STOP. */
  signal?: TrialSignal;
  /** The runs' --dist-timeout, seconds (default: the runs' own default). */
  distTimeout?: number;
}): Promise<Trial[]> {
  const sig = o.signal ?? 'KILL';
  const mtTrain = path.join(ROOT, 'dist', 'bin', 'mt-train.js');
  if (!fs.existsSync(mtTrain)) throw new Error(`${mtTrain} is missing: run \`npm run build:ts\` first`);
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-kill-'));
  const exp = experiment(dir);
  const limit = o.limitMs ?? 60000;
  const results: Trial[] = [];
  for (let trial = 0; trial < o.trials; trial++) {
    const mode: Trial['mode'] = trial % 2 === 0 ? 'launcher' : 'env';
    const killedRank = Math.floor(trial / 2) % 2;
    const name = `kill${trial}`;
    const port = await freePort();
    const base = ['-f', exp, '-d', 'cpu', '--experiment-name', name, '--progress', 'none',
      ...(o.distTimeout !== undefined ? ['--dist-timeout', String(o.distTimeout)] : [])];
    const procs: Proc[] = mode === 'launcher'
      ? [start(mtTrain, [...base, '--nproc', '2', '--dist-url', `tcp://127.0.0.1:${port}`], dir, {})]
      : [0, 1].map((r) => start(mtTrain, base, dir, {
        RANK: String(r), WORLD_SIZE: '2', LOCAL_RANK: '0', LOCAL_WORLD_SIZE: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
      }));
    const problems: string[] = [];
    let exitMs = NaN;
    const pids: number[] = [];
    let victim = 0;
    if (!(await waitForTraining(path.join(dir, 'outputs', name, 'metrics.jsonl'), procs, 120000))) {
      problems.push(`the run did not start training: ${procs.map((p) => p.out.slice(-400)).join(' | ')}`);
    } else {
      if (mode === 'launcher') {
        const workers = childrenOf(procs[0].child.pid!);
        pids.push(procs[0].child.pid!, ...workers);
        victim = workers.find((p) => rankOf(p) === killedRank) ?? 0;
      } else {
        pids.push(...procs.map((p) => p.child.pid!));
        victim = procs[killedRank].child.pid!;
      }
      if (!victim) problems.push(`no worker with RANK=${killedRank}`);
      else {
        await sleep(Math.floor(Math.random() * 1500)); // somewhere in a step
        const tKill = Date.now();
        process.kill(victim, `SIG${sig}`);
        // Without a launcher nothing of ours can end a stopped worker (torchrun's agent would kill it).
        const watched = sig === 'STOP' && mode === 'env' ? pids.filter((p) => p !== victim) : pids;
        while (watched.some(alive) && Date.now() - tKill < limit) await sleep(20);
        exitMs = Date.now() - tKill;
        if (watched.some(alive)) problems.push(`still running ${limit / 1000} s after SIG${sig}: pids ${watched.filter(alive).join(', ')}`);
      }
    }
    for (const p of procs) if (p.code === undefined) p.child.kill('SIGKILL');
    for (const pid of pids) if (alive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await Promise.all(procs.map((p) => p.exited));
    const codes = procs.map((p) => p.code ?? null);
    if (!problems.length) {
      if (mode === 'launcher') {
        if (codes[0] === 0) problems.push('the launcher exited 0');
        const named = sig === 'KILL' ? 'was killed by SIGKILL' : 'was stopped \\(hung';
        if (!new RegExp(`rank ${killedRank} \\(local ${killedRank}\\) ${named}`).test(procs[0].out)) {
          problems.push(`the launcher's output does not name rank ${killedRank}: ${procs[0].out.slice(-600)}`);
        }
      } else {
        const survivor = procs[1 - killedRank];
        if (survivor.code === 0) problems.push(`rank ${1 - killedRank} exited 0`);
        if (!new RegExp(`rank ${killedRank}\\b`).test(survivor.out)) {
          problems.push(`rank ${1 - killedRank}'s output does not name rank ${killedRank}: ${survivor.out.slice(-600)}`);
        }
      }
    }
    const r: Trial = { trial, mode, signal: sig, killedRank, exitMs, codes, problems };
    o.log?.(`trial ${trial + 1}/${o.trials} (${mode}, rank ${killedRank} SIG${sig}): ` +
      (problems.length ? `FAILED: ${problems.join('; ')}` : `${sig === 'STOP' && mode === 'env' ? 'the survivor' : 'every process'} gone ` +
        `${exitMs} ms after SIG${sig}, exit codes ${codes.map((c) => c ?? 'SIGKILL').join(', ')}; ` +
        `${mode === 'launcher' ? 'launcher' : `rank ${1 - killedRank}`}: ` +
        `"${(procs[mode === 'launcher' ? 0 : 1 - killedRank].out.match(mode === 'launcher' ? /.*was (killed by|stopped).*/ : /.*(died|hung|left the group).*/)?.[0] ?? '').slice(0, 200)}"`));
    results.push(r);
  }
  if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
  return results;
}

if (require.main === module) {
  const arg = (name: string) => { const i = process.argv.indexOf(name); return i >= 0 ? process.argv[i + 1] : undefined; };
  const trials = Number(arg('--trials') ?? 10);
  const signal = (arg('--signal') ?? 'KILL').toUpperCase().replace(/^SIG/, '');
  if (signal !== 'KILL' && signal !== 'STOP') {
    console.error(`--signal must be KILL or STOP, got '${signal}'`);
    process.exit(2);
  }
  const distTimeout = arg('--dist-timeout') === undefined ? undefined : Number(arg('--dist-timeout'));
  killTrials({ trials, signal, distTimeout, log: (s) => console.log(s) }).then((rs) => {
    const ok = rs.filter((r) => !r.problems.length).length;
    const worst = Math.max(...rs.map((r) => r.exitMs).filter((x) => !Number.isNaN(x)));
    console.log(`${ok} of ${rs.length} SIG${signal} trials passed; slowest exit ${worst} ms after the signal (limit 60000 ms); ` +
      `load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    process.exit(ok === rs.length ? 0 : 1);
  }, (e) => { console.error(e.message); process.exit(1); });
}

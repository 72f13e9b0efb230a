// Starts this machine's workers of a multi-process run and watches them: one child process per local
// device, each with the torchrun variables of its rank (context.ts: workerEnv), so a worker resolves its
// context the same way whether we, torchrun or srun started it. When one worker fails (non-zero exit or
// a signal), the others are stopped — SIGTERM, then SIGKILL after a grace period — and the result names
// the rank that caused it. A worker that is stopped (SIGSTOP, a debugger: it keeps its connections open
// but answers nothing, so its peers fail within the group timeout) cannot act on SIGTERM: it is killed at
// once and named as the cause; one still running 10 s after SIGTERM is killed and named as hung. Workers run in process groups of their own, so a terminal's Ctrl-C reaches
// the launcher alone, which passes SIGINT/SIGTERM on to every worker exactly once; a worker whose
// launcher is gone (M2T_LAUNCHER_PID no longer its parent) stops by itself (watchLauncher).
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import { workerEnv, type Role } from './context';

export interface LaunchOptions {
  /** The worker command: executable and arguments (e.g. process.execPath and the CLI's argv). */
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Extra per-worker variables (e.g. CUDA device selection). */
  perWorkerEnv?: (localRank: number) => Record<string, string>;
  /** After the first failure, how long the others get to exit after SIGTERM before SIGKILL (default 10 s). */
  graceMs?: number;
  /** Where worker output goes: 'inherit' (default) or 'pipe' (tests read it from `outputs`). */
  stdio?: 'inherit' | 'pipe';
}

export interface WorkerExit { rank: number; localRank: number; code: number | null; signal: NodeJS.Signals | null; }

export interface LaunchResult {
  /** 0 when every worker exited 0; else the first failing worker's exit code (1 for a signal). */
  exitCode: number;
  /** The cause: a worker killed from outside, else one found stopped, else the first that failed. */
  firstFailure?: WorkerExit;
  exits: WorkerExit[];
  outputs: string[];
  message?: string;
}

export function launchWorkers(role: Extract<Role, { kind: 'launcher' }>, o: LaunchOptions): Promise<LaunchResult> {
  const grace = o.graceMs ?? 10000;
  const children: ChildProcess[] = [];
  const exits: (WorkerExit | undefined)[] = new Array(role.localWorkers).fill(undefined);
  const outputs: string[] = new Array(role.localWorkers).fill('');
  let firstFailure: WorkerExit | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  // Signals this launcher sent each worker: a death by any other signal came from outside (kill -9, OOM).
  const sent: Set<NodeJS.Signals>[] = [...Array(role.localWorkers)].map(() => new Set());
  const signal = (i: number, sig: NodeJS.Signals) => {
    sent[i].add(sig);
    children[i].kill(sig);
  };
  // Workers found stopped (hung) when the others were stopped, and those still running after the grace.
  const stopped = new Set<number>(), unresponsive = new Set<number>();

  const stopOthers = () => {
    for (const i of children.keys()) {
      if (exits[i]) continue;
      // A stopped process acts on no signal but SIGKILL (a SIGTERM would wait for a SIGCONT).
      if (isStopped(children[i].pid)) {
        stopped.add(i);
        signal(i, 'SIGKILL');
      } else signal(i, 'SIGTERM');
    }
    killTimer ??= setTimeout(() => {
      for (const i of children.keys()) {
        if (exits[i]) continue;
        unresponsive.add(i);
        signal(i, 'SIGKILL');
      }
    }, grace);
  };
  const forward = (sig: NodeJS.Signals) => () => {
    for (const i of children.keys()) if (!exits[i]) signal(i, sig);
  };
  const onInt = forward('SIGINT'), onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  return new Promise<LaunchResult>((resolve) => {
    let left = role.localWorkers;
    for (let local = 0; local < role.localWorkers; local++) {
      const env = { ...(o.env ?? process.env), ...workerEnv(role, local), ...(o.perWorkerEnv?.(local) ?? {}),
        M2T_LAUNCHER_PID: String(process.pid) };
      const child = spawn(o.command, o.args, { env, detached: true, stdio: o.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
      child.stdout?.on('data', (d) => { outputs[local] += d; });
      child.stderr?.on('data', (d) => { outputs[local] += d; });
      children.push(child);
      const rank = role.machine * role.localWorkers + local;
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (exits[local]) return;
        const e: WorkerExit = { rank, localRank: local, code, signal };
        exits[local] = e;
        if ((code !== 0 || signal) && !firstFailure) {
          firstFailure = e;
          // After a forwarded Ctrl-C/SIGTERM, a worker that exits 130/143 stopped in order; its peers are
          // still saving their own checkpoints, and a second signal would tell them to exit at once.
          const orderly = (code === 130 && sent[local].has('SIGINT')) || (code === 143 && sent[local].has('SIGTERM'));
          if (!orderly) stopOthers();
        }
        if (--left === 0) {
          if (killTimer) clearTimeout(killTimer);
          process.off('SIGINT', onInt);
          process.off('SIGTERM', onTerm);
          // A worker killed from outside is the cause even when a peer's failed collective exited first
          // (the peer can see the lost connection before this process sees the death); so is a stopped
          // one, whose peers gave up on it.
          const outside = exits.find((x) => x?.signal && !sent[x.localRank].has(x.signal));
          const hung = [...stopped].map((i) => exits[i]!)[0];
          const f = outside ?? hung ?? firstFailure;
          const who = (e: WorkerExit) => `rank ${e.rank} (local ${e.localRank})`;
          const what = (e: WorkerExit) => e === hung ? 'was stopped (hung: it kept its connections but ran nothing) and was killed'
            : e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
          const notes = [
            ...(firstFailure && firstFailure !== f ? [firstFailure] : []),
            ...[...unresponsive].map((i) => exits[i]!).filter((e) => e !== f),
          ].map((e) => unresponsive.has(e.localRank) ? `; ${who(e)} did not exit within ${grace / 1000} s of SIGTERM (hung?) and was killed` : `; ${who(e)} ${what(e)}`);
          resolve({
            exitCode: f ? (f.code && f.code !== 0 ? f.code : 1) : 0,
            firstFailure: f,
            exits: exits as WorkerExit[],
            outputs,
            message: f ? `${who(f)} ${what(f)}${notes.join('')}; stopped the other ${role.localWorkers - 1} local worker(s)` : undefined,
          });
        }
      };
      child.on('exit', done);
      child.on('error', () => done(127, null));
    }
  });
}

/** Linux: whether `pid` is stopped (state T: SIGSTOP/SIGTSTP; t: a debugger). Elsewhere false. */
function isStopped(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[tT]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** In a worker: calls `onOrphaned` once if the launcher that started it dies (checked every `everyMs`). */
export function watchLauncher(onOrphaned: () => void, everyMs = 1000): () => void {
  const launcher = Number(process.env.M2T_LAUNCHER_PID);
  if (!launcher) return () => {};
  const t = setInterval(() => {
    if (process.ppid !== launcher) {
      clearInterval(t);
      onOrphaned();
    }
  }, everyMs);
  t.unref();
  return () => clearInterval(t);
}

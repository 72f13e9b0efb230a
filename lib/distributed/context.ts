// Who this process is in a data-parallel run, decided once from the flags and the environment.
// Three ways to start a run, as clusters do:
//   launcher  mt-train starts one worker per local device itself. One machine by default; several with
//             the reference's MACHINE / MACHINE_TOTAL and --dist-url tcp://host:port (the same on every
//             machine), rank = MACHINE · devices per machine + local index.
//   torchrun  RANK, WORLD_SIZE, LOCAL_RANK (+ LOCAL_WORLD_SIZE), MASTER_ADDR, MASTER_PORT: this process is
//             one rank, started by torchrun, mpirun wrappers or any launcher that sets them.
//   slurm     SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID (+ SLURM_NTASKS_PER_NODE): srun started this rank;
//             the master comes from MASTER_ADDR / MASTER_PORT or --dist-url.
// Every inconsistency is a UserError naming the variable or flag.
import { UserError } from '../errors';

export interface Rendezvous { host: string; port: number; }

type Env = Record<string, string | undefined>;

/** One rank of a run that is already started (by us or by an outside launcher). */
export interface RankContext {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  master: Rendezvous;
  source: 'single' | 'launcher' | 'torchrun' | 'slurm';
}

/** What this invocation must do: run as one rank, or start `localWorkers` ranks of a larger world. */
export type Role =
  | { kind: 'worker'; context: RankContext }
  | { kind: 'launcher'; machine: number; machines: number; localWorkers: number; worldSize: number; master: Rendezvous };

export const DEFAULT_PORT = 29500;

/** How long a rank waits on the others without progress — to join, and in every collective — before the
 *  run fails naming the rank it lost (seconds). Well under a minute, so that a killed or hung (stopped)
 *  rank ends the whole run within 60 s; it only has to cover how far the ranks drift apart within one step,
 *  since every longer wait where they legitimately diverge (setting up, rank 0 writing, evaluating or
 *  measuring at an epoch's end) keeps the ranks answering each other (run-loop.ts: whileRanksWork). */
export const DEFAULT_DIST_TIMEOUT_S = 30;
const MAX_DIST_TIMEOUT_S = 24 * 3600;

/** Parses a timeout in seconds (the --dist-timeout flag, M2T_DIST_TIMEOUT). */
export function parseDistTimeout(v: string, what = '--dist-timeout'): number {
  const s = /^\s*\d*\.?\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!(s > 0 && s <= MAX_DIST_TIMEOUT_S)) throw new UserError(`${what} must be a number of seconds in (0, ${MAX_DIST_TIMEOUT_S}], got '${v}'`);
  return s;
}

/** The group timeout in ms: the --dist-timeout flag (seconds), else M2T_DIST_TIMEOUT, else the default. */
export function resolveDistTimeoutMs(flagSeconds?: number, env: Env = process.env): number {
  const v = env.M2T_DIST_TIMEOUT;
  const s = flagSeconds ?? (v !== undefined && v.trim() !== '' ? parseDistTimeout(v, 'environment variable M2T_DIST_TIMEOUT') : DEFAULT_DIST_TIMEOUT_S);
  return Math.max(1, Math.round(1000 * s));
}

/** tcp://host:port → { host, port }. */
export function parseDistUrl(url: string, what = '--dist-url'): Rendezvous {
  const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d+)\/?$/.exec(url.trim());
  if (!m) throw new UserError(`invalid ${what} '${url}' (expected tcp://host:port, e.g. tcp://10.0.0.1:29500)`);
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) throw new UserError(`invalid ${what} '${url}': port ${m[2]} is not in 1..65535`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

function intVar(env: Env, name: string, min: number): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || !Number.isSafeInteger(Number(v))) {
    throw new UserError(`environment variable ${name}='${v}' must be an integer >= ${min}`);
  }
  return Number(v);
}

function checkRank(rank: number, world: number, rankName: string, worldName: string): void {
  if (rank >= world) throw new UserError(`${rankName}=${rank} is not below ${worldName}=${world}`);
}

function masterFrom(env: Env, distUrl: string | undefined, needed: string): Rendezvous {
  if (distUrl) return parseDistUrl(distUrl);
  const host = env.MASTER_ADDR;
  if (!host) throw new UserError(`${needed} needs the rendezvous address: set MASTER_ADDR (and MASTER_PORT) or pass --dist-url tcp://host:port`);
  const port = intVar(env, 'MASTER_PORT', 1) ?? DEFAULT_PORT;
  if (port > 65535) throw new UserError(`environment variable MASTER_PORT='${env.MASTER_PORT}' is not a TCP port`);
  return { host, port };
}

/**
 * Decides this process's role. `localDevices` is how many workers this machine runs when we launch them
 * (the -d list's length, or --nproc for CPU). `distUrl` is the --dist-url flag.
 */
export function resolveRole(opts: { localDevices: number; distUrl?: string; env?: Env }): Role {
  const env = opts.env ?? process.env;
  const local = opts.localDevices;
  if (!Number.isInteger(local) || local < 1) throw new UserError(`the number of local workers must be >= 1, got ${local}`);

  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) {
    const rank = intVar(env, 'RANK', 0), world = intVar(env, 'WORLD_SIZE', 1);
    if (rank === undefined || world === undefined) throw new UserError('torchrun-style start: set both RANK and WORLD_SIZE');
    checkRank(rank, world, 'RANK', 'WORLD_SIZE');
    const localWorld = intVar(env, 'LOCAL_WORLD_SIZE', 1) ?? Math.min(local, world);
    const localRank = intVar(env, 'LOCAL_RANK', 0) ?? rank % localWorld;
    checkRank(localRank, localWorld, 'LOCAL_RANK', 'LOCAL_WORLD_SIZE');
    const master = world === 1 && !env.MASTER_ADDR && !opts.distUrl ? { host: '127.0.0.1', port: DEFAULT_PORT }
      : masterFrom(env, opts.distUrl, 'a torchrun-style start (RANK/WORLD_SIZE)');
    return { kind: 'worker', context: { rank, worldSize: world, localRank, localWorldSize: localWorld, master, source: 'torchrun' } };
  }

  if (env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined) {
    const rank = intVar(env, 'SLURM_PROCID', 0)!, world = intVar(env, 'SLURM_NTASKS', 1)!;
    checkRank(rank, world, 'SLURM_PROCID', 'SLURM_NTASKS');
    // SLURM_NTASKS_PER_NODE may read "4" or "4(x2)"; the first number is this node's count when uniform.
    const perNode = /^(\d+)/.exec(env.SLURM_NTASKS_PER_NODE ?? '')?.[1];
    const localWorld = perNode ? Number(perNode) : Math.min(local, world);
    const localRank = intVar(env, 'SLURM_LOCALID', 0) ?? rank % localWorld;
    checkRank(localRank, localWorld, 'SLURM_LOCALID', 'SLURM_NTASKS_PER_NODE');
    const master = world === 1 && !env.MASTER_ADDR && !opts.distUrl ? { host: '127.0.0.1', port: DEFAULT_PORT }
      : masterFrom(env, opts.distUrl, 'a Slurm start (SLURM_PROCID/SLURM_NTASKS)');
    return { kind: 'worker', context: { rank, worldSize: world, localRank, localWorldSize: localWorld, master, source: 'slurm' } };
  }

  const machines = intVar(env, 'MACHINE_TOTAL', 1) ?? 1;
  const machine = intVar(env, 'MACHINE', 0) ?? 0;
  checkRank(machine, machines, 'MACHINE', 'MACHINE_TOTAL');
  if (machines > 1 && !opts.distUrl) {
    throw new UserError(`MACHINE_TOTAL=${machines}: several machines need --dist-url tcp://host:port (machine 0's address, the same on every machine)`);
  }
  const master = opts.distUrl ? parseDistUrl(opts.distUrl) : { host: '127.0.0.1', port: DEFAULT_PORT };
  const worldSize = machines * local;
  if (worldSize === 1) {
    return { kind: 'worker', context: { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, master, source: 'single' } };
  }
  return { kind: 'launcher', machine, machines, localWorkers: local, worldSize, master };
}

/** The environment a launcher gives its local worker `localRank`: the torchrun variables, so one code
 *  path (resolveRole → worker) serves every way of starting a run. */
export function workerEnv(role: Extract<Role, { kind: 'launcher' }>, localRank: number): Record<string, string> {
  return {
    RANK: String(role.machine * role.localWorkers + localRank),
    WORLD_SIZE: String(role.worldSize),
    LOCAL_RANK: String(localRank),
    LOCAL_WORLD_SIZE: String(role.localWorkers),
    MASTER_ADDR: role.master.host,
    MASTER_PORT: String(role.master.port),
  };
}

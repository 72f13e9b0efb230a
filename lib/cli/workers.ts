// What mt-train and mt-eval share to run data-parallel: --nproc, and deciding whether this invocation
// launches this machine's workers (then waits for them) or is one of them (then joins the process group).
import { Command, InvalidArgumentError } from 'commander';
import * as os from 'os';
import { checkDevices, parseDevices } from '../devices';
import { DEFAULT_DIST_TIMEOUT_S, parseDistTimeout, resolveDistTimeoutMs, resolveRole } from '../distributed/context';
import { launchWorkers, watchLauncher } from '../distributed/launch';
import type { ProcessGroup } from '../distributed/process-group';
import { UserError, errorMessage } from '../errors';
import { positiveInt } from './common';

export interface MultiProcessFlags {
  nproc?: number;
  /** Seconds. */
  distTimeout?: number;
}

export function addMultiProcessFlags(program: Command): void {
  program.option('--nproc <n>', 'with -d cpu: data-parallel CPU processes on this machine (Gloo over TCP); the batch is split between them', positiveInt('--nproc'));
  program.option(
    '--dist-timeout <seconds>',
    `multi-process runs: how long a rank waits on the others (to join, in a step) before the run fails naming the rank that died or hung (default: M2T_DIST_TIMEOUT, else ${DEFAULT_DIST_TIMEOUT_S})`,
    (v: string) => {
      try {
        return parseDistTimeout(v);
      } catch (e) {
        throw new InvalidArgumentError(errorMessage(e));
      }
    },
  );
}

export const MULTI_PROCESS_HELP =
  '\nSeveral machines: the same command on each, with MACHINE=<index> MACHINE_TOTAL=<count> and\n' +
  '--dist-url tcp://<machine 0>:<port>; or start one process per rank with torchrun / srun (RANK,\n' +
  'WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT or SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID).\n';

export type Workers =
  /** This invocation launched the workers; they are done. */
  | { exit: number }
  /** This process is a rank: `processGroup` when the world has more than one. */
  | { processGroup?: ProcessGroup; stopWatching: () => void };

/**
 * `check` validates the run once, in the launcher, rather than in every worker; `onOrphaned` stops a worker
 * whose launcher died. Throws UserError on bad flags or environment.
 */
export async function startWorkers(o: {
  tool: string;
  argv: string[];
  devices: string;
  nproc?: number;
  distUrl?: string;
  /** --dist-timeout, seconds. */
  distTimeout?: number;
  what: 'training' | 'linear evaluation';
  check: () => void;
  onOrphaned: () => void;
}): Promise<Workers> {
  const spec = parseDevices(o.devices);
  if (spec.kind === 'cuda' && o.nproc !== undefined) throw new UserError('--nproc is for -d cpu; with GPUs the -d list sets the processes');
  if (spec.kind === 'cuda') checkDevices(spec, o.what); // once, here, rather than in every worker
  const role = resolveRole({ localDevices: spec.kind === 'cpu' ? (o.nproc ?? 1) : spec.ids.length, distUrl: o.distUrl });
  const timeoutMs = resolveDistTimeoutMs(o.distTimeout); // a bad M2T_DIST_TIMEOUT fails here, in the launcher too
  if (role.kind === 'launcher') {
    o.check(); // a bad experiment fails here, once, not in every worker
    const threads = String(Math.max(1, Math.floor(os.availableParallelism() / role.localWorkers)));
    const r = await launchWorkers(role, {
      command: process.execPath, args: [...process.execArgv, process.argv[1], ...o.argv],
      perWorkerEnv: (): Record<string, string> => (process.env.OMP_NUM_THREADS ? {} : { OMP_NUM_THREADS: threads }),
    });
    if (r.message) process.stderr.write(`${o.tool}: ${r.message}\n`);
    return { exit: r.exitCode };
  }
  if (role.context.worldSize === 1) return { stopWatching: () => {} };
  const { ProcessGroup } = await import('../distributed/process-group');
  const processGroup = await ProcessGroup.fromContext(role.context, timeoutMs);
  return { processGroup, stopWatching: watchLauncher(o.onOrphaned) };
}

// The processes of a data-parallel CPU run, joined over TCP (native Gloo; rank 0 serves the rendezvous
// store at `master`); ranks that are all on one machine sum through shared memory instead (`transport`;
// M2T_SHM=0 keeps them on TCP). One collective at a time per group; each returns a Promise and leaves the
// event loop free.
import { addon } from '../native';
import { DEFAULT_DIST_TIMEOUT_S, type RankContext } from './context';

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** Rank 0's address: it serves the rendezvous store there; the others connect to it. */
  host: string;
  port: number;
  /** This rank's address for the data connections (default: this machine's address on the route to `host`). */
  localHost?: string;
  /** Connecting, and every collective, fails after this long without progress (default 30 s,
   *  DEFAULT_DIST_TIMEOUT_S: a dead or hung rank fails the others within it). */
  timeoutMs?: number;
}

interface NativeProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly transport: 'shm' | 'tcp' | null;
  connect(): Promise<void>;
  allreduceSum(data: Float32Array): Promise<void>;
  barrier(timeoutMs?: number): Promise<void>;
}

export class ProcessGroup {
  private constructor(private readonly native: NativeProcessGroup, readonly timeoutMs: number) {}

  /** Joins the group: resolves once every rank is connected to every other. */
  static async connect(o: ProcessGroupOptions): Promise<ProcessGroup> {
    const Native = addon().ProcessGroup as new (o: ProcessGroupOptions) => NativeProcessGroup;
    const timeoutMs = o.timeoutMs ?? DEFAULT_DIST_TIMEOUT_S * 1000;
    const pg = new Native({ ...o, timeoutMs });
    await pg.connect();
    return new ProcessGroup(pg, timeoutMs);
  }

  /** The group of a resolved rank context (lib/distributed/context.ts). */
  static fromContext(c: RankContext, timeoutMs?: number): Promise<ProcessGroup> {
    return ProcessGroup.connect({ rank: c.rank, worldSize: c.worldSize, host: c.master.host, port: c.master.port, timeoutMs });
  }

  /** The native object (what a model's `processGroup` option passes to the engine). */
  get handle(): unknown { return this.native; }

  get rank(): number { return this.native.rank; }
  get worldSize(): number { return this.native.worldSize; }
  /** How sums travel: 'shm' (shared memory, every rank on this machine) or 'tcp' (Gloo). */
  get transport(): 'shm' | 'tcp' { return this.native.transport ?? 'tcp'; }

  /** In place: data ← Σ over ranks of data. */
  allreduceSum(data: Float32Array): Promise<void> { return this.native.allreduceSum(data); }

  /** In place: data ← mean over ranks of data. */
  async allreduceMean(data: Float32Array): Promise<void> {
    await this.native.allreduceSum(data);
    const k = 1 / this.worldSize;
    for (let i = 0; i < data.length; i++) data[i] *= k;
  }

  /** Waits for every rank; `timeoutMs` overrides the group's timeout for this wait. */
  barrier(timeoutMs?: number): Promise<void> { return this.native.barrier(timeoutMs); }

  /**
   * Runs `work` (which must not use this group) on every rank, and returns once every rank's is done.
   * Where ranks legitimately diverge for long (setting up, rank 0 writing, evaluating or measuring at an
   * epoch's end while the others wait), one long wait would also wait that long on a rank that died or
   * hung. Instead every rank all-reduces "am I done" every `everyMs` while it works, and at once when
   * done, until all are: a rank that stops answering fails the others within the group timeout however
   * long the work takes, and that timeout only has to cover the drift of one step. A rank whose work
   * throws stops answering and rethrows; the others then fail naming it.
   */
  async whileWorking<T>(work: () => Promise<T>, everyMs = Math.min(1000, this.timeoutMs / 4)): Promise<T> {
    let outcome: { value: T } | { error: unknown } | undefined;
    const running = work().then((value) => { outcome = { value }; }, (error: unknown) => { outcome = { error }; });
    for (;;) {
      if (!outcome) await settledOrAfter(running, everyMs);
      if (outcome && 'error' in outcome) throw outcome.error;
      const done = new Float32Array([outcome ? 1 : 0]);
      await this.native.allreduceSum(done);
      if (done[0] === this.worldSize) return (outcome as { value: T }).value;
    }
  }
}

/** Resolves when `p` settles or after `ms`, whichever is first (the timer does not outlive it). */
function settledOrAfter(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]).finally(() => clearTimeout(timer));
}

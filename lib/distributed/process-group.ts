// The processes of a data-parallel CPU run, joined over TCP (native Gloo; rank 0 serves the rendezvous
// store at `master`). One collective at a time per group; each returns a Promise and leaves the event loop free.
import { addon } from '../native';
import type { RankContext } from './context';

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** Rank 0's address: it serves the rendezvous store there; the others connect to it. */
  host: string;
  port: number;
  /** This rank's address for the data connections (default: this machine's address on the route to `host`). */
  localHost?: string;
  /** Connecting, and every collective, fails after this long without progress (default 60 s). */
  timeoutMs?: number;
}

interface NativeProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  connect(): Promise<void>;
  allreduceSum(data: Float32Array): Promise<void>;
  barrier(timeoutMs?: number): Promise<void>;
}

export class ProcessGroup {
  private constructor(private readonly native: NativeProcessGroup) {}

  /** Joins the group: resolves once every rank is connected to every other. */
  static async connect(o: ProcessGroupOptions): Promise<ProcessGroup> {
    const Native = addon().ProcessGroup as new (o: ProcessGroupOptions) => NativeProcessGroup;
    const pg = new Native(o);
    await pg.connect();
    return new ProcessGroup(pg);
  }

  /** The group of a resolved rank context (lib/distributed/context.ts). */
  static fromContext(c: RankContext, timeoutMs?: number): Promise<ProcessGroup> {
    return ProcessGroup.connect({ rank: c.rank, worldSize: c.worldSize, host: c.master.host, port: c.master.port, timeoutMs });
  }

  /** The native object (what a model's `processGroup` option passes to the engine). */
  get handle(): unknown { return this.native; }

  get rank(): number { return this.native.rank; }
  get worldSize(): number { return this.native.worldSize; }

  /** In place: data ← Σ over ranks of data. */
  allreduceSum(data: Float32Array): Promise<void> { return this.native.allreduceSum(data); }

  /** In place: data ← mean over ranks of data. */
  async allreduceMean(data: Float32Array): Promise<void> {
    await this.native.allreduceSum(data);
    const k = 1 / this.worldSize;
    for (let i = 0; i < data.length; i++) data[i] *= k;
  }

  /** Waits for every rank; `timeoutMs` overrides the group's timeout for this wait (rank 0 evaluating). */
  barrier(timeoutMs?: number): Promise<void> { return this.native.barrier(timeoutMs); }
}

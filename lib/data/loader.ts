// Batch loaders: native threads decode and augment straight into NHWC float32 batch buffers,
// `prefetch` batches ahead; TypeScript only awaits the next batch. Batches depend on
// (seed, epoch, position) only — not on thread count — and an epoch can start at any batch.
import * as os from 'os';
import type { ImageBatch } from '../engine';
import { addon } from '../native';
import { Dataset } from './datasets';
import { ViewTransform, byolView1, byolView2, linearEvalTransform, toNativeView, validateView } from './transforms';

export interface BadFile {
  /** Dataset index and file of the unreadable image. */
  index: number;
  path: string;
  error: string;
  /** Position in the epoch's order whose image it was (or replaced). */
  slot: number;
}

/** Unreadable images met in one epoch; each was replaced by another image (deterministically). */
export interface BadDataReport {
  epoch: number;
  count: number;
  /** The first few, by position in the epoch. */
  examples: BadFile[];
}

export interface LoaderOptions {
  /** Images per batch in this process. */
  batchSize: number;
  /** Seeds the epoch permutations and every augmentation draw. Default 0. */
  seed?: number;
  /** This process and the number of processes: each takes its DistributedSampler-style shard
   *  (the epoch order padded to divide evenly, then every worldSize-th from rank). Default 0 / 1. */
  rank?: number;
  worldSize?: number;
  /** A fresh seeded permutation each epoch (else dataset order). Default true. */
  shuffle?: boolean;
  /** Native decode/augment threads. Default: os.availableParallelism(). */
  threads?: number;
  /** Batches prepared ahead of the consumer. Default 2. */
  prefetch?: number;
  /** Reads per position before giving up when images (and their replacements) are unreadable. Default 16. */
  maxAttempts?: number;
  /** Called once per epoch, after its last batch, if any image was unreadable. Default: a
   *  console.warn naming the count and the first few files. */
  onBadData?: (report: BadDataReport) => void;
}

export interface PretrainLoaderOptions extends LoaderOptions {
  /** Default byolView1() / byolView2() (224 px, ImageNet normalisation). */
  view1?: ViewTransform;
  view2?: ViewTransform;
}

export interface EvalLoaderOptions extends LoaderOptions {
  /** Default linearEvalTransform(). Use validationTransform() for validation. */
  transform?: ViewTransform;
  /** Drop the last partial batch. Default false (evaluation keeps every image). */
  dropLast?: boolean;
}

interface BatchBase {
  epoch: number;
  /** Batch index within the epoch. */
  index: number;
  /** Images in the batch. */
  size: number;
  /** Dataset index of each image (after any replacement of an unreadable one). */
  indices: Int32Array;
  labels: Int32Array;
  /** Hands the batch memory back to the loader now (its arrays become empty). Call it once the
   *  batch is consumed (e.g. after the training step's promise resolved); otherwise the memory
   *  returns when the arrays are garbage-collected. */
  release(): void;
}

export interface PretrainBatch extends BatchBase {
  view1: ImageBatch;
  view2: ImageBatch;
}

export interface EvalBatch extends BatchBase {
  images: ImageBatch;
}

interface NativeBatch {
  epoch: number;
  index: number;
  size: number;
  views: { data: Float32Array; shape: [number, number, number, number] }[];
  indices: Int32Array;
  labels: Int32Array;
}

interface NativeLoader {
  batchesPerEpoch(): number;
  samplesPerRank(): number;
  startEpoch(epoch: number, startBatch: number): void;
  next(): Promise<NativeBatch | null>;
  report(): { epoch: number; bad: number; examples: BadFile[] };
  close(): void;
}

function checkInt(name: string, v: number, lo: number, hi = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${name} must be an integer in [${lo}, ${hi}], got ${v}`);
}

/** The default bad-data report: one warning per epoch. */
export function warnBadData(r: BadDataReport): void {
  const list = r.examples.map((e) => `${e.path}: ${e.error}`).join('; ');
  console.warn(`momentum2-teacher: epoch ${r.epoch}: ${r.count} unreadable image(s) skipped and replaced by others` +
    (list ? ` (first: ${list})` : ''));
}

abstract class BaseLoader<B> {
  protected readonly native: NativeLoader;
  private readonly onBadData: (r: BadDataReport) => void;
  private busy = false;
  private closed = false;
  /** Batches per epoch in this process. */
  readonly batchesPerEpoch: number;
  /** Images per epoch in this process (ceil(size / worldSize)). */
  readonly samplesPerRank: number;

  protected constructor(readonly dataset: Dataset, views: ViewTransform[], o: LoaderOptions, dropLast: boolean) {
    if (!(dataset instanceof Dataset)) throw new TypeError('loader: dataset must be a Dataset');
    checkInt('batchSize', o.batchSize, 1);
    const rank = o.rank ?? 0, worldSize = o.worldSize ?? 1;
    checkInt('worldSize', worldSize, 1);
    checkInt('rank', rank, 0, worldSize - 1);
    const seed = o.seed ?? 0;
    checkInt('seed', seed, 0);
    const threads = o.threads ?? Math.max(1, os.availableParallelism());
    checkInt('threads', threads, 1, 1024);
    views.forEach((v, i) => validateView(v, `view${i + 1}`));
    this.onBadData = o.onBadData ?? warnBadData;
    this.native = new (addon().DataLoader)(dataset.native, {
      batchSize: o.batchSize,
      views: views.map(toNativeView),
      seed,
      rank,
      worldSize,
      shuffle: o.shuffle ?? true,
      dropLast,
      threads,
      prefetch: o.prefetch ?? 2,
      maxAttempts: o.maxAttempts ?? 16,
    }) as NativeLoader;
    this.batchesPerEpoch = this.native.batchesPerEpoch();
    this.samplesPerRank = this.native.samplesPerRank();
  }

  protected abstract wrap(b: NativeBatch): B;

  /** The batches of `epoch` (0-based) from batch `startBatch` on: the same data, bit for bit,
   *  as the same batches of an uninterrupted epoch. Rejects if a position found no readable
   *  image in maxAttempts tries. Only one epoch iterates at a time. */
  async *epoch(epoch: number, opts: { startBatch?: number } = {}): AsyncGenerator<B, void, undefined> {
    checkInt('epoch', epoch, 0);
    const start = opts.startBatch ?? 0;
    checkInt('startBatch', start, 0, this.batchesPerEpoch);
    if (this.closed) throw new Error('loader is closed');
    if (this.busy) throw new Error('loader: another epoch is still being iterated; finish or break out of it first');
    this.busy = true;
    try {
      this.native.startEpoch(epoch, start);
      for (;;) {
        const b = await this.native.next();
        if (b === null) break;
        yield this.wrap(b);
      }
      const r = this.badData();
      if (r.count > 0) this.onBadData(r);
    } finally {
      this.busy = false;
    }
  }

  /** Unreadable images of the current (or last) epoch so far. */
  badData(): BadDataReport {
    const r = this.native.report();
    return { epoch: r.epoch, count: r.bad, examples: r.examples };
  }

  /** Stops the threads and frees the buffers not lent out. Idempotent. */
  close(): void {
    this.closed = true;
    this.native.close();
  }
}

function releaser(arrays: Float32Array[]): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    addon().releaseBatchArrays(arrays);
  };
}

/** Two augmented views per image (spec §7), the last partial batch dropped. */
export class PretrainLoader extends BaseLoader<PretrainBatch> {
  readonly view1: ViewTransform;
  readonly view2: ViewTransform;
  constructor(dataset: Dataset, o: PretrainLoaderOptions) {
    const v1 = o.view1 ?? byolView1(), v2 = o.view2 ?? byolView2();
    super(dataset, [v1, v2], o, true);
    this.view1 = v1;
    this.view2 = v2;
  }
  protected wrap(b: NativeBatch): PretrainBatch {
    const [a, c] = b.views;
    return {
      epoch: b.epoch, index: b.index, size: b.size, indices: b.indices, labels: b.labels,
      view1: { data: a.data, shape: a.shape },
      view2: { data: c.data, shape: c.shape },
      release: releaser([a.data, c.data]),
    };
  }
}

/** One view per image with labels: linear-evaluation training or validation. */
export class EvalLoader extends BaseLoader<EvalBatch> {
  readonly transform: ViewTransform;
  constructor(dataset: Dataset, o: EvalLoaderOptions) {
    const t = o.transform ?? linearEvalTransform();
    super(dataset, [t], o, o.dropLast ?? false);
    this.transform = t;
  }
  protected wrap(b: NativeBatch): EvalBatch {
    const [a] = b.views;
    return {
      epoch: b.epoch, index: b.index, size: b.size, indices: b.indices, labels: b.labels,
      images: { data: a.data, shape: a.shape },
      release: releaser([a.data]),
    };
  }
}

/** This rank's share of an epoch: dataset indices in order and their positions ("slots") in
 *  the padded global order — what a loader with the same options visits. */
export function epochOrder(n: number, o: { seed?: number; epoch: number; rank?: number; worldSize?: number; shuffle?: boolean }): { indices: number[]; slots: number[] } {
  const r = addon().epochIndices(n, o.seed ?? 0, o.epoch, o.rank ?? 0, o.worldSize ?? 1, o.shuffle ?? true) as {
    indices: Float64Array;
    slots: Float64Array;
  };
  return { indices: Array.from(r.indices), slots: Array.from(r.slots) };
}

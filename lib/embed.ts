// Embeddings: the pooled features of a pre-trained encoder for every image of a dataset, in
// dataset order, through the native data pipeline (resize + centre crop) and the native encoder
// (BN in inference mode). Written as safetensors: `features` [n, d] F32, `labels` [n] I64
// (−1 where a dataset has none), and in the metadata `files` (JSON list, one per row), `classes`.
import * as os from 'os';
import * as path from 'path';
import { LinearProbe, readCheckpoint } from './engine';
import { UserError } from './errors';
import type { DatasetConfig } from './experiment';
import { inferArch, transformFromMetadata } from './export';
import { f32, i64, writeSafetensors } from './safetensors';
import { Dataset } from './data/datasets';
import { EvalLoader } from './data/loader';
import { validationTransform } from './data/transforms';

export interface EmbedOptions {
  /** Pre-training checkpoint. */
  checkpoint: string;
  /** An image folder (one sub-folder per class), a dataset config (imagefolder, mnist, idx) or an open Dataset. */
  data: string | DatasetConfig | Dataset;
  /** Default 'teacher'. */
  encoder?: 'teacher' | 'student';
  /** Images per native call. Default 256. */
  batchSize?: number;
  /** Centre crop side / shorter-side resize / normalisation; default: the run's evaluation transform. */
  imageSize?: number;
  resize?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  /** Decode threads. Default: the core count. */
  workers?: number;
  /** Engine threads. Default: all cores. */
  threads?: number;
  /** Write the result here (safetensors). */
  out?: string;
  /** Called after each batch with images done and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface Embeddings {
  /** [n, dim] row-major. */
  features: Float32Array;
  n: number;
  dim: number;
  labels: Int32Array;
  files: string[];
  classes: string[];
  seconds: number;
}

/** Opens the datasets an experiment can name (synthetic ones are the run loops' own). */
export async function openDataset(d: DatasetConfig): Promise<Dataset> {
  let ds: Dataset;
  if (d.kind === 'imagefolder') ds = await Dataset.openFolder(d.root);
  else if (d.kind === 'mnist') ds = await Dataset.mnist(d.split);
  else if (d.kind === 'idx') ds = await Dataset.openIdx(d.images, d.labels);
  else throw new UserError(`embed: '${d.kind}' datasets are not supported (use an image folder, mnist or idx)`);
  return d.limit ? ds.limit(d.limit) : ds;
}

/** The features of every image of `data` under the encoder of `checkpoint`. */
export async function embed(o: EmbedOptions): Promise<Embeddings> {
  const t0 = performance.now();
  const ck = await readCheckpoint(o.checkpoint).catch((e: Error) => {
    throw new UserError(`cannot read checkpoint ${o.checkpoint}: ${e.message}`);
  });
  const encoder = o.encoder ?? 'teacher';
  const prefix = `${encoder}_encoder.`;
  const a = inferArch(ck.tensors, prefix, o.checkpoint);
  const t = transformFromMetadata(ck.metadata);
  const ds = o.data instanceof Dataset ? o.data : typeof o.data === 'string' ? await Dataset.openFolder(o.data) : await openDataset(o.data);
  const batchSize = o.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UserError(`embed: batchSize must be a positive integer, got ${batchSize}`);
  // The probe's classifier is never used: only its frozen encoder computes (numClasses is a formality).
  const probe = new LinearProbe({ arch: a.arch, width: a.width, smallStem: a.smallStem, numClasses: 2, threads: o.threads });
  probe.loadEncoder(ck.tensors, prefix);
  const size = o.imageSize ?? t.crop;
  const transform = validationTransform({
    size,
    resize: o.resize ?? (o.imageSize ? Math.round(o.imageSize / 0.875) : t.resize),
    mean: o.mean ?? (t.mean as [number, number, number]),
    std: o.std ?? (t.std as [number, number, number]),
  });
  const loader = new EvalLoader(ds, {
    batchSize, shuffle: false, dropLast: false, transform, threads: Math.max(1, o.workers ?? os.availableParallelism()),
  });
  const n = ds.size;
  const features = new Float32Array(n * a.featureDim);
  const labels = new Int32Array(n).fill(-1);
  const files = new Array<string>(n);
  let done = 0;
  try {
    for await (const b of loader.epoch(0)) {
      try {
        const f = await probe.features(b.images);
        for (let r = 0; r < b.size; r++) {
          // Dataset order (no shuffle). An unreadable image is replaced by another by the loader: the
          // row then holds that image's features, label and file name, consistently.
          const row = done + r;
          features.set(f.subarray(r * a.featureDim, (r + 1) * a.featureDim), row * a.featureDim);
          labels[row] = b.labels[r];
          files[row] = ds.path(b.indices[r]);
        }
        done += b.size;
      } finally {
        b.release();
      }
      o.onProgress?.(done, n);
    }
  } finally {
    loader.close();
  }
  if (done !== n) throw new Error(`embed: the loader gave ${done} images of ${n}`);
  const result: Embeddings = { features, n, dim: a.featureDim, labels, files, classes: ds.classes, seconds: (performance.now() - t0) / 1000 };
  if (o.out) writeEmbeddings(o.out, result, { checkpoint: path.resolve(o.checkpoint), encoder, arch: a.arch });
  return result;
}

/** Writes embeddings as safetensors (features F32 [n, d], labels I64 [n], metadata files/classes). */
export function writeEmbeddings(file: string, e: Embeddings, extra: Record<string, string> = {}): void {
  writeSafetensors(
    file,
    { features: f32([e.n, e.dim], e.features), labels: i64([e.n], e.labels) },
    { ...extra, files: JSON.stringify(e.files), classes: JSON.stringify(e.classes) },
  );
}

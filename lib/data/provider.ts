// Adapter from the run loops' data interface (./epoch-source.ts: DataProvider / EpochSource) to
// this data layer: `setDataProvider(dataLayerProvider())` makes pre-training and linear
// evaluation read image folders and MNIST through the native pipeline.
import * as os from 'os';
import type { DataProvider, EpochSource, EvalSourceOptions, LabeledBatch, PretrainBatch, PretrainSourceOptions } from './epoch-source';
import type { DatasetConfig } from '../experiment';
import { UserError } from '../errors';
import { addon } from '../native';
import { Dataset } from './datasets';

/** PIL's Image.MAX_IMAGE_PIXELS: the default decode limit (data config `maxImagePixels`). */
export const DEFAULT_MAX_IMAGE_PIXELS = 89_478_485;
import { EvalLoader, PretrainLoader } from './loader';
import { byolView1, byolView2, linearEvalTransform, validationTransform } from './transforms';

export interface ProviderOptions {
  /** Folder-index cache directory, or false. Default: defaultCacheDir(). */
  cache?: boolean | string;
  /** Batches prepared ahead. Default 2. */
  prefetch?: number;
}

async function openDataset(d: DatasetConfig, o: ProviderOptions): Promise<Dataset> {
  let ds: Dataset;
  if (d.kind === 'imagefolder') {
    addon().setMaxImagePixels(d.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS);
    ds = await Dataset.openFolder(d.root, { cache: o.cache ?? true, threads: Math.max(1, os.availableParallelism()) });
    // torchvision's ImageFolder refuses a class without images too: it would be a label no
    // example carries, silently changing the classifier's output count.
    const empty = ds.info().emptyClasses ?? [];
    if (empty.length) {
      throw new UserError(
        `${d.root}: ${empty.length === 1 ? 'the class folder' : `${empty.length} class folders`} ${empty.slice(0, 5).map((c) => `'${c}'`).join(', ')}${empty.length > 5 ? ', …' : ''} ` +
          `${empty.length === 1 ? 'holds' : 'hold'} no images; remove ${empty.length === 1 ? 'it' : 'them'} or add images`,
      );
    }
  }
  else if (d.kind === 'mnist') ds = await Dataset.mnist(d.split);
  else if (d.kind === 'idx') ds = await Dataset.openIdx(d.images, d.labels);
  else throw new Error(`the data layer does not read '${d.kind}' datasets`);
  return d.limit ? ds.limit(d.limit) : ds;
}

function source<B>(ds: Dataset, loader: PretrainLoader | EvalLoader, strip: (b: any) => B): EpochSource<B> {
  return {
    size: ds.size,
    numClasses: ds.numClasses,
    batchesPerEpoch: loader.batchesPerEpoch,
    async *batches(epoch: number, start = 0) {
      for await (const b of loader.epoch(epoch, { startBatch: start })) yield strip(b);
    },
    async close() {
      loader.close();
    },
  };
}

/** A DataProvider over lib/data for 'imagefolder' and 'mnist' datasets ('synthetic' stays with
 *  the run loops' own source). Batches are plain PretrainBatch/LabeledBatch objects that also
 *  carry `release()`, `indices` and `labels`. */
export function dataLayerProvider(o: ProviderOptions = {}): DataProvider {
  return {
    async openPretrain(p: PretrainSourceOptions): Promise<EpochSource<PretrainBatch>> {
      const ds = await openDataset(p.dataset, o);
      const a = p.augmentation;
      const common = {
        size: p.imageSize,
        scale: a.crop.scale,
        ratio: a.crop.ratio,
        jitter: a.colorJitter,
        grayscale: a.grayscale.p,
        flip: a.flip.p,
        mean: a.mean,
        std: a.std,
      };
      const view1 = byolView1({ ...common, blur: { p: a.blur.p[0], sigma: a.blur.sigma }, solarize: { p: a.solarize.p[0], threshold: a.solarize.threshold } });
      const view2 = byolView2({ ...common, blur: { p: a.blur.p[1], sigma: a.blur.sigma }, solarize: { p: a.solarize.p[1], threshold: a.solarize.threshold } });
      const loader = new PretrainLoader(ds, {
        batchSize: p.batchSize, seed: p.seed, rank: p.rank, worldSize: p.worldSize, threads: Math.max(1, p.workers),
        prefetch: o.prefetch, view1, view2, onBadData: p.onBadData,
      });
      return source(ds, loader, (b) => b);
    },
    async openEval(p: EvalSourceOptions): Promise<EpochSource<LabeledBatch>> {
      const ds = await openDataset(p.dataset, o);
      const a = p.augmentation;
      const train = p.split === 'train';
      const transform = train
        ? linearEvalTransform({ size: p.imageSize, scale: a.crop.scale, ratio: a.crop.ratio, flip: a.flip.p, mean: a.mean, std: a.std })
        : validationTransform({ size: p.imageSize, resize: a.resizeSize, mean: a.mean, std: a.std });
      const loader = new EvalLoader(ds, {
        batchSize: p.batchSize, seed: p.seed, rank: p.rank, worldSize: p.worldSize, threads: Math.max(1, p.workers),
        prefetch: o.prefetch, transform, shuffle: train, dropLast: train, onBadData: p.onBadData,
      });
      return source(ds, loader, (b) => b);
    },
  };
}

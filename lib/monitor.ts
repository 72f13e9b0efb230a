// kNN monitor during pre-training (experiment key `monitor`): after every `knnEvery` epochs, the
// teacher encoder of the epoch checkpoint embeds a fixed memory bank of labelled training images
// and a fixed set of held-out queries; the weighted kNN top-1 (k 200, T 0.07 by default) is
// computed natively (lib/feature-eval → native/eval) with a bounded similarity tile.
import { LinearProbe, readCheckpoint } from './engine';
import { UserError } from './errors';
import { extractFeatures, knn, numClasses } from './feature-eval';
import type { DatasetConfig, PretrainConfig } from './experiment';
import type { DataProvider } from './data/epoch-source';

export interface MonitorResult {
  /** Weighted kNN top-1 (%) of the held-out queries. */
  top1: number;
  memory: number;
  queries: number;
  seconds: number;
}

/** `limit` images at most (class-stratified, fixed seed: see DatasetSchema); 0 keeps the dataset as it is. */
function limited(d: DatasetConfig, limit: number): DatasetConfig {
  if (limit === 0) return d;
  return { ...d, limit: d.limit ? Math.min(d.limit, limit) : limit };
}

export class KnnMonitor {
  private probe?: LinearProbe;
  private readonly train: DatasetConfig;
  private readonly test: DatasetConfig;
  private readonly resizeSize: number;

  /** Undefined when the experiment has no monitor or knnEvery is 0. Throws UserError when the
   *  monitor names no datasets and the experiment has no `evaluation` block to take them from. */
  static create(cfg: PretrainConfig, provider: DataProvider): KnnMonitor | undefined {
    if (!cfg.monitor || cfg.monitor.knnEvery === 0) return undefined;
    return new KnnMonitor(cfg, provider);
  }

  private constructor(private readonly cfg: PretrainConfig, private readonly provider: DataProvider) {
    const m = cfg.monitor!;
    const train = m.train ?? cfg.evaluation?.train, test = m.test ?? cfg.evaluation?.test;
    if (!train || !test) {
      throw new UserError(
        `monitor: no ${!train ? 'monitor.train' : 'monitor.test'} dataset, and no evaluation block to take it from; ` +
          `name the memory bank (monitor.train) and the held-out queries (monitor.test)`,
      );
    }
    this.train = limited(train, m.memoryLimit);
    this.test = limited(test, m.queryLimit);
    this.resizeSize = m.resizeSize ?? cfg.evaluation?.resizeSize ?? cfg.data.imageSize;
  }

  /** Whether to measure after `epoch` (1-based) of `maxEpoch`. */
  due(epoch: number): boolean {
    return epoch % this.cfg.monitor!.knnEvery === 0 || epoch === this.cfg.maxEpoch;
  }

  /** Scores the teacher encoder stored in `checkpoint`. */
  async run(checkpoint: string): Promise<MonitorResult> {
    const t0 = performance.now();
    const m = this.cfg.monitor!, model = this.cfg.model;
    this.probe ??= new LinearProbe({ arch: model.arch, width: model.width, smallStem: model.smallStem, numClasses: 2, threads: this.cfg.threads || undefined });
    this.probe.loadEncoder((await readCheckpoint(checkpoint)).tensors, 'teacher_encoder.');
    const mem = await extractFeatures(this.probe, this.provider, this.cfg, this.resizeSize, this.train);
    const queries = await extractFeatures(this.probe, this.provider, this.cfg, this.resizeSize, this.test);
    const classes = numClasses(mem, queries);
    const top1 = await knn(mem, queries, classes, { k: m.k, temperature: m.temperature, blockBytes: Math.floor(m.blockMiB * 2 ** 20) });
    return { top1, memory: mem.n, queries: queries.n, seconds: (performance.now() - t0) / 1000 };
  }
}

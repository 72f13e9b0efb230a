// Evaluation on frozen features: the teacher encoder's pooled features of un-augmented images
// (resize + centre crop), then (a) multinomial logistic regression on standardised features —
// a linear probe — and (b) a cosine k-nearest-neighbour classifier with similarity-weighted
// votes (weights exp(s/T), T = 0.07, as InstDisc / solo-learn). Optionally the same for the
// encoder at its random initialisation, so a run shows what pre-training gained. Both classifiers
// run in native code (native/eval: sgemm tiles, bounded memory); the reference's linear evaluation
// (augmented, classifier through BN1d) is mt-eval.
import { LinearProbe, Momentum2Teacher, readCheckpoint, type StateDict } from './engine';
import { addon } from './native';
import type { DatasetConfig, FeatureEvaluationConfig, PretrainConfig } from './experiment';
import { stratifiedIndices } from './data/stratify';
import { WHOLE_DATASET, dataProvider, type DataProvider } from './data/epoch-source';

export interface FeatureScores {
  /** Top-1 accuracy (%) of the linear classifier on the test set. */
  linearTop1: number;
  /** Top-1 accuracy (%) of the kNN classifier (undefined when knnK is 0). */
  knnTop1?: number;
  /** Training features in the kNN memory (a class-stratified choice when knnTrainLimit caps it). */
  knnMemory?: number;
}

export interface EvaluationResult {
  trainImages: number;
  testImages: number;
  featureDim: number;
  pretrained: FeatureScores;
  randomInit?: FeatureScores;
  seconds: number;
}

export interface Features {
  x: Float32Array; // [n, d] row-major
  y: Int32Array;
  n: number;
  d: number;
}

/** The encoder's pooled features of `dataset` under the validation transform (resize the shorter
 *  side to `resizeSize`, centre-crop cfg.data.imageSize), in dataset order. */
export async function extractFeatures(probe: LinearProbe, provider: DataProvider, cfg: PretrainConfig, resizeSize: number,
  dataset: DatasetConfig): Promise<Features> {
  const a = cfg.data.augmentation;
  const source = await provider.openEval({
    dataset,
    augmentation: { crop: a.crop, flip: { p: 0 }, resizeSize, mean: a.mean, std: a.std },
    imageSize: cfg.data.imageSize,
    batchSize: 500,
    workers: cfg.data.workers,
    seed: cfg.seed,
    split: 'val',
    ...WHOLE_DATASET,
  });
  try {
    // One array of source.size rows, filled batch by batch (no second copy: 10.5 GB at ImageNet size).
    let x = new Float32Array(0);
    const y = new Int32Array(source.size);
    let n = 0, d = 0;
    for await (const b of source.batches(0)) {
      try {
        const f = await probe.features(b.images);
        if (n === 0) {
          d = f.length / b.labels.length;
          x = new Float32Array(source.size * d);
        }
        if (n + b.labels.length > source.size) throw new Error(`feature extraction: the data source yielded more than its ${source.size} images`);
        x.set(f, n * d);
        y.set(b.labels, n);
        n += b.labels.length;
      } finally {
        b.release?.();
      }
    }
    return { x: x.subarray(0, n * d), y: y.subarray(0, n), n, d };
  } finally {
    await source.close();
  }
}

/** 1 + the largest label of any of the feature sets (a loop: spreading 1.28 M labels overflows the stack). */
export function numClasses(...sets: Features[]): number {
  let mx = -1;
  for (const f of sets) for (let i = 0; i < f.y.length; i++) if (f.y[i] > mx) mx = f.y[i];
  return mx + 1;
}

/** Top-1 accuracy (%) of predictions against labels. */
export function accuracy(pred: Int32Array, labels: Int32Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) correct++;
  return labels.length ? (100 * correct) / labels.length : 0;
}

export interface LogisticRegressionOptions {
  /** Passes over the training features. Default 5. */
  epochs?: number;
  batchSize?: number;
  /** Starting learning rate of the cosine schedule. Default 0.5. */
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  seed?: number;
}

/** Softmax regression on features standardised with the training set's statistics, by SGD
 *  (momentum 0.9, batch 256, cosine lr from 0.5, wd 1e-4 by default), in native code; resolves to
 *  the test rows' predicted classes. */
export function logisticRegressionPredict(train: Features, test: Features, classes: number, o: LogisticRegressionOptions = {}): Promise<Int32Array> {
  if (test.d !== train.d) throw new RangeError(`logisticRegression: test features have dim ${test.d}, training features ${train.d}`);
  return addon().logisticRegression(train.x, train.y, test.x, train.d, { classes, ...o });
}

/** The linear probe's test top-1 (%). */
export async function logisticRegression(train: Features, test: Features, classes: number, epochs: number, seed: number): Promise<number> {
  return accuracy(await logisticRegressionPredict(train, test, classes, { epochs, seed }), test.y);
}

export interface KnnOptions {
  /** Neighbours that vote. Default 200. */
  k?: number;
  /** Votes weigh exp(cosine similarity / temperature). Default 0.07. */
  temperature?: number;
  /** Bound on the similarity tile computed at once (bytes). Default 32 MiB. */
  blockBytes?: number;
}

/** Weighted cosine kNN over the whole of `mem` (native; see native/eval/knn.h): each query's class. */
export function knnPredict(mem: Features, queries: Features, classes: number, o: KnnOptions = {}): Promise<Int32Array> {
  if (queries.d !== mem.d) throw new RangeError(`knn: query features have dim ${queries.d}, memory features ${mem.d}`);
  return addon().knnPredict(mem.x, mem.y, queries.x, mem.d, { classes, ...o });
}

/** Weighted kNN test top-1 (%). */
export async function knn(mem: Features, test: Features, classes: number, o: KnnOptions = {}): Promise<number> {
  return accuracy(await knnPredict(mem, test, classes, o), test.y);
}

/** Rows `rows` of `f` (the kNN memory). */
export function selectRows(f: Features, rows: ArrayLike<number>): Features {
  const { d } = f;
  const x = new Float32Array(rows.length * d), y = new Int32Array(rows.length);
  for (let k = 0; k < rows.length; k++) {
    x.set(f.x.subarray(rows[k] * d, (rows[k] + 1) * d), k * d);
    y[k] = f.y[rows[k]];
  }
  return { x, y, n: rows.length, d };
}

/** The kNN memory: at most `limit` training features (0 = all), a class-stratified choice drawn with `seed`. */
export function knnMemory(train: Features, limit: number, seed: number): Features {
  return limit > 0 && limit < train.n ? selectRows(train, stratifiedIndices(train.y, limit, seed)) : train;
}

async function score(encoder: StateDict, cfg: PretrainConfig, ev: FeatureEvaluationConfig, provider: DataProvider): Promise<FeatureScores & { trainImages: number; testImages: number; featureDim: number }> {
  const probe = new LinearProbe({ arch: cfg.model.arch, width: cfg.model.width, smallStem: cfg.model.smallStem, numClasses: 2, threads: cfg.threads || undefined });
  probe.loadEncoder(encoder, 'teacher_encoder.');
  const train = await extractFeatures(probe, provider, cfg, ev.resizeSize, ev.train);
  const test = await extractFeatures(probe, provider, cfg, ev.resizeSize, ev.test);
  const classes = numClasses(train, test);
  const out: FeatureScores & { trainImages: number; testImages: number; featureDim: number } = {
    trainImages: train.n, testImages: test.n, featureDim: train.d, linearTop1: 0,
  };
  if (ev.knnK > 0) {
    const mem = knnMemory(train, ev.knnTrainLimit, cfg.seed);
    out.knnTop1 = await knn(mem, test, classes, { k: ev.knnK, temperature: ev.knnTemperature, blockBytes: Math.floor(ev.knnBlockMiB * 2 ** 20) });
    out.knnMemory = mem.n;
  }
  out.linearTop1 = await logisticRegression(train, test, classes, ev.linearEpochs, cfg.seed);
  return out;
}

/** Scores the teacher encoder of `checkpoint` (and, if asked, its random initialisation). */
export async function evaluateFeatures(checkpoint: string, cfg: PretrainConfig, provider: DataProvider = dataProvider()): Promise<EvaluationResult> {
  const ev = cfg.evaluation;
  if (!ev) throw new Error('evaluateFeatures: the experiment has no `evaluation` block');
  const t0 = performance.now();
  const trained = await score((await readCheckpoint(checkpoint)).tensors, cfg, ev, provider);
  const result: EvaluationResult = {
    trainImages: trained.trainImages,
    testImages: trained.testImages,
    featureDim: trained.featureDim,
    pretrained: { linearTop1: trained.linearTop1, knnTop1: trained.knnTop1, knnMemory: trained.knnMemory },
    seconds: 0,
  };
  if (ev.compareRandomInit) {
    // The same encoder before training: the engine's initialisation is a function of the seed.
    const init = new Momentum2Teacher({
      arch: cfg.model.arch, width: cfg.model.width, smallStem: cfg.model.smallStem, seed: cfg.seed,
      hiddenDim: cfg.model.hiddenDim, outDim: cfg.model.outDim, totalIterations: 1,
    });
    const r = await score(init.stateDict(), cfg, ev, provider);
    result.randomInit = { linearTop1: r.linearTop1, knnTop1: r.knnTop1, knnMemory: r.knnMemory };
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

/** The evaluation as log lines: a small table with the gain over random initialisation. */
export function formatEvaluation(r: EvaluationResult, testName: string): string[] {
  const pct = (x?: number) => (x === undefined ? '     -' : x.toFixed(2).padStart(6));
  const gain = (a?: number, b?: number) => (a === undefined || b === undefined ? '     -' : `${a - b >= 0 ? '+' : ''}${(a - b).toFixed(2)}`.padStart(6));
  const lines = [
    `Evaluation on ${testName} (${r.testImages} images; features of ${r.trainImages} training images, dim ${r.featureDim}), ${r.seconds.toFixed(0)} s:`,
    `                    linear top-1   kNN top-1`,
  ];
  if (r.pretrained.knnMemory !== undefined)
    lines.splice(1, 0, `  kNN memory: ${r.pretrained.knnMemory} training features${r.pretrained.knnMemory < r.trainImages ? ' (class-stratified random choice)' : ''}`);
  if (r.randomInit) lines.push(`  random init           ${pct(r.randomInit.linearTop1)}      ${pct(r.randomInit.knnTop1)}`);
  lines.push(`  pre-trained           ${pct(r.pretrained.linearTop1)}      ${pct(r.pretrained.knnTop1)}`);
  if (r.randomInit) {
    lines.push(`  gain                  ${gain(r.pretrained.linearTop1, r.randomInit.linearTop1)}      ${gain(r.pretrained.knnTop1, r.randomInit.knnTop1)}`);
  }
  return lines;
}

// Evaluation on frozen features: the teacher encoder's pooled features of un-augmented images
// (resize + centre crop), then (a) multinomial logistic regression on standardised features —
// a linear probe — and (b) a cosine k-nearest-neighbour classifier with similarity-weighted
// votes (weights exp(s/0.07)). Optionally the same for the encoder at its random initialisation,
// so a run shows what pre-training gained. Cheap enough for MNIST-sized data on a CPU; the
// reference's linear evaluation (augmented, classifier through BN1d) is mt-eval.
import { LinearProbe, Momentum2Teacher, readCheckpoint, type StateDict } from './engine';
import type { DatasetConfig, FeatureEvaluationConfig, PretrainConfig } from './experiment';
import { dataProvider, type DataProvider } from './pipeline';

export interface FeatureScores {
  /** Top-1 accuracy (%) of the linear classifier on the test set. */
  linearTop1: number;
  /** Top-1 accuracy (%) of the kNN classifier (undefined when knnK is 0). */
  knnTop1?: number;
}

export interface EvaluationResult {
  trainImages: number;
  testImages: number;
  featureDim: number;
  pretrained: FeatureScores;
  randomInit?: FeatureScores;
  seconds: number;
}

interface Features {
  x: Float32Array; // [n, d] row-major
  y: Int32Array;
  n: number;
  d: number;
}

async function extract(probe: LinearProbe, provider: DataProvider, cfg: PretrainConfig, ev: FeatureEvaluationConfig,
  dataset: DatasetConfig): Promise<Features> {
  const a = cfg.data.augmentation;
  const source = await provider.openEval({
    dataset,
    augmentation: { crop: a.crop, flip: { p: 0 }, resizeSize: ev.resizeSize, mean: a.mean, std: a.std },
    imageSize: cfg.data.imageSize,
    batchSize: 500,
    workers: cfg.data.workers,
    seed: cfg.seed,
    split: 'val',
    rank: 0,
    worldSize: 1,
  });
  try {
    const chunks: Float32Array[] = [];
    const labels: number[] = [];
    let d = 0;
    for await (const b of source.batches(0)) {
      try {
        const f = await probe.features(b.images);
        d = f.length / b.labels.length;
        chunks.push(f);
        labels.push(...b.labels);
      } finally {
        b.release?.();
      }
    }
    const x = new Float32Array(labels.length * d);
    let o = 0;
    for (const c of chunks) {
      x.set(c, o);
      o += c.length;
    }
    return { x, y: Int32Array.from(labels), n: labels.length, d };
  } finally {
    await source.close();
  }
}

/** Standardises train and test features with the training set's mean and standard deviation. */
function standardise(train: Features, test: Features): void {
  const { d } = train;
  const mu = new Float64Array(d), sd = new Float64Array(d);
  for (let i = 0; i < train.n; i++) for (let j = 0; j < d; j++) mu[j] += train.x[i * d + j];
  for (let j = 0; j < d; j++) mu[j] /= train.n;
  for (let i = 0; i < train.n; i++) for (let j = 0; j < d; j++) sd[j] += (train.x[i * d + j] - mu[j]) ** 2;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j] / train.n + 1e-8);
  for (const f of [train, test]) for (let i = 0; i < f.n; i++) for (let j = 0; j < d; j++) f.x[i * d + j] = (f.x[i * d + j] - mu[j]) / sd[j];
}

/** Seeded xorshift32 in [0, 1). */
function rand(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

/** Softmax regression z = W·x + b by SGD (momentum 0.9, batch 256, cosine lr from 0.5, wd 1e-4); returns test top-1 %. */
export function logisticRegression(train: Features, test: Features, classes: number, epochs: number, seed: number): number {
  const { d } = train;
  const W = new Float64Array(classes * (d + 1)), V = new Float64Array(W.length), G = new Float64Array(W.length);
  const order = Array.from({ length: train.n }, (_, i) => i);
  const r = rand(seed);
  const B = 256, steps = epochs * Math.ceil(train.n / B);
  const p = new Float64Array(classes);
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let s = 0; s < train.n; s += B) {
      const lr = 0.5 * 0.5 * (1 + Math.cos((Math.PI * step++) / steps));
      G.fill(0);
      const end = Math.min(train.n, s + B);
      for (let t = s; t < end; t++) {
        const i = order[t], xo = i * d;
        let mx = -Infinity;
        for (let c = 0; c < classes; c++) {
          let z = W[c * (d + 1) + d];
          for (let j = 0; j < d; j++) z += W[c * (d + 1) + j] * train.x[xo + j];
          p[c] = z;
          if (z > mx) mx = z;
        }
        let sum = 0;
        for (let c = 0; c < classes; c++) sum += (p[c] = Math.exp(p[c] - mx));
        for (let c = 0; c < classes; c++) {
          const g = p[c] / sum - (c === train.y[i] ? 1 : 0);
          for (let j = 0; j < d; j++) G[c * (d + 1) + j] += g * train.x[xo + j];
          G[c * (d + 1) + d] += g;
        }
      }
      const inv = 1 / (end - s);
      for (let k = 0; k < W.length; k++) {
        V[k] = 0.9 * V[k] + G[k] * inv + 1e-4 * W[k];
        W[k] -= lr * V[k];
      }
    }
  }
  let correct = 0;
  for (let i = 0; i < test.n; i++) {
    let best = -Infinity, arg = -1;
    for (let c = 0; c < classes; c++) {
      let z = W[c * (d + 1) + d];
      for (let j = 0; j < d; j++) z += W[c * (d + 1) + j] * test.x[i * d + j];
      if (z > best) { best = z; arg = c; }
    }
    if (arg === test.y[i]) correct++;
  }
  return (100 * correct) / test.n;
}

/** Cosine kNN with votes weighted by exp(similarity / 0.07); returns test top-1 %. */
export function knn(train: Features, test: Features, classes: number, k: number, limit: number): number {
  const { d } = train;
  const n = limit > 0 ? Math.min(limit, train.n) : train.n;
  const unit = (f: Features, rows: number): Float32Array => {
    const u = new Float32Array(rows * d);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += f.x[i * d + j] ** 2;
      const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
      for (let j = 0; j < d; j++) u[i * d + j] = f.x[i * d + j] * inv;
    }
    return u;
  };
  const mem = unit(train, n), q = unit(test, test.n);
  const kk = Math.min(k, n);
  const topS = new Float64Array(kk), topI = new Int32Array(kk), votes = new Float64Array(classes);
  let correct = 0;
  for (let t = 0; t < test.n; t++) {
    topS.fill(-Infinity);
    const qo = t * d;
    for (let i = 0; i < n; i++) {
      let s = 0;
      const mo = i * d;
      for (let j = 0; j < d; j++) s += mem[mo + j] * q[qo + j];
      if (s <= topS[kk - 1]) continue;
      let p = kk - 1;
      while (p > 0 && topS[p - 1] < s) { topS[p] = topS[p - 1]; topI[p] = topI[p - 1]; p--; }
      topS[p] = s;
      topI[p] = i;
    }
    votes.fill(0);
    for (let p = 0; p < kk; p++) votes[train.y[topI[p]]] += Math.exp(topS[p] / 0.07);
    let arg = 0;
    for (let c = 1; c < classes; c++) if (votes[c] > votes[arg]) arg = c;
    if (arg === test.y[t]) correct++;
  }
  return (100 * correct) / test.n;
}

async function score(encoder: StateDict, cfg: PretrainConfig, ev: FeatureEvaluationConfig, provider: DataProvider): Promise<FeatureScores & { trainImages: number; testImages: number; featureDim: number }> {
  const probe = new LinearProbe({ arch: cfg.model.arch, width: cfg.model.width, smallStem: cfg.model.smallStem, numClasses: 2, threads: cfg.threads || undefined });
  probe.loadEncoder(encoder, 'teacher_encoder.');
  const train = await extract(probe, provider, cfg, ev, ev.train);
  const test = await extract(probe, provider, cfg, ev, ev.test);
  const classes = Math.max(...train.y, ...test.y) + 1;
  const out: FeatureScores & { trainImages: number; testImages: number; featureDim: number } = {
    trainImages: train.n, testImages: test.n, featureDim: train.d, linearTop1: 0,
  };
  if (ev.knnK > 0) out.knnTop1 = knn(train, test, classes, ev.knnK, ev.knnTrainLimit);
  standardise(train, test);
  out.linearTop1 = logisticRegression(train, test, classes, ev.linearEpochs, cfg.seed);
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
    pretrained: { linearTop1: trained.linearTop1, knnTop1: trained.knnTop1 },
    seconds: 0,
  };
  if (ev.compareRandomInit) {
    // The same encoder before training: the engine's initialisation is a function of the seed.
    const init = new Momentum2Teacher({
      arch: cfg.model.arch, width: cfg.model.width, smallStem: cfg.model.smallStem, seed: cfg.seed,
      hiddenDim: cfg.model.hiddenDim, outDim: cfg.model.outDim, totalIterations: 1,
    });
    const r = await score(init.stateDict(), cfg, ev, provider);
    result.randomInit = { linearTop1: r.linearTop1, knnTop1: r.knnTop1 };
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
  if (r.randomInit) lines.push(`  random init           ${pct(r.randomInit.linearTop1)}      ${pct(r.randomInit.knnTop1)}`);
  lines.push(`  pre-trained           ${pct(r.pretrained.linearTop1)}      ${pct(r.pretrained.knnTop1)}`);
  if (r.randomInit) {
    lines.push(`  gain                  ${gain(r.pretrained.linearTop1, r.randomInit.linearTop1)}      ${gain(r.pretrained.knnTop1, r.randomInit.knnTop1)}`);
  }
  return lines;
}

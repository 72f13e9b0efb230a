// The frozen-feature classifiers (native/eval through lib/feature-eval) against straightforward
// references written here: a brute-force weighted kNN and the SGD logistic regression in float64.
// They must agree, separate what is separable, stay at chance on noise, and be deterministic.
import { knn, knnMemory, knnPredict, logisticRegression, logisticRegressionPredict, type Features } from '../lib/feature-eval';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

function blobs(n: number, d: number, classes: number, spread: number, seed: number): Features {
  const r = lcg(seed);
  const centres = Array.from({ length: classes }, () => Array.from({ length: d }, () => r() * 3));
  const x = new Float32Array(n * d), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < d; j++) x[i * d + j] = centres[y[i]][j] + spread * r();
  }
  return { x, y, n, d };
}

/** Reference: every cosine similarity in float64, the k best (ties: lower index), Σ exp(s/T) per class. */
function knnReference(mem: Features, q: Features, classes: number, k: number, t: number): Int32Array {
  const { d } = mem;
  const norm = (f: Features, i: number) => Math.sqrt(Array.from(f.x.subarray(i * d, (i + 1) * d)).reduce((a, v) => a + v * v, 0));
  const mn = Array.from({ length: mem.n }, (_, i) => norm(mem, i));
  const out = new Int32Array(q.n);
  for (let a = 0; a < q.n; a++) {
    const qn = norm(q, a);
    const sims = Array.from({ length: mem.n }, (_, i) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += mem.x[i * d + j] * q.x[a * d + j];
      return { s: s / (mn[i] * qn), i };
    });
    sims.sort((u, v) => v.s - u.s || u.i - v.i);
    const votes = new Float64Array(classes);
    for (const { s, i } of sims.slice(0, k)) votes[mem.y[i]] += Math.exp(s / t);
    let arg = 0;
    for (let c = 1; c < classes; c++) if (votes[c] > votes[arg]) arg = c;
    out[a] = arg;
  }
  return out;
}

/** Reference: the same SGD in float64 with a plain loop per sample (the former JS implementation),
 *  on standardised features; returns test predictions. The shuffle differs from the native one. */
function logregReference(train: Features, test: Features, classes: number, epochs: number): Int32Array {
  const { d } = train;
  const mu = new Float64Array(d), sd = new Float64Array(d);
  for (let i = 0; i < train.n; i++) for (let j = 0; j < d; j++) mu[j] += train.x[i * d + j] / train.n;
  for (let i = 0; i < train.n; i++) for (let j = 0; j < d; j++) sd[j] += (train.x[i * d + j] - mu[j]) ** 2 / train.n;
  for (let j = 0; j < d; j++) sd[j] = Math.sqrt(sd[j] + 1e-8);
  const xs = (f: Features, i: number, j: number) => (f.x[i * d + j] - mu[j]) / sd[j];
  const W = new Float64Array(classes * (d + 1)), V = new Float64Array(W.length), G = new Float64Array(W.length);
  const order = Array.from({ length: train.n }, (_, i) => i);
  const r = lcg(99);
  const B = 256, steps = epochs * Math.ceil(train.n / B);
  const p = new Float64Array(classes);
  let step = 0;
  for (let e = 0; e < epochs; e++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(((r() + 1) / 2) * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let s = 0; s < train.n; s += B) {
      const lr = 0.5 * 0.5 * (1 + Math.cos((Math.PI * step++) / steps));
      G.fill(0);
      const end = Math.min(train.n, s + B);
      for (let t = s; t < end; t++) {
        const i = order[t];
        let mx = -Infinity;
        for (let c = 0; c < classes; c++) {
          let z = W[c * (d + 1) + d];
          for (let j = 0; j < d; j++) z += W[c * (d + 1) + j] * xs(train, i, j);
          p[c] = z;
          mx = Math.max(mx, z);
        }
        let sum = 0;
        for (let c = 0; c < classes; c++) sum += (p[c] = Math.exp(p[c] - mx));
        for (let c = 0; c < classes; c++) {
          const g = p[c] / sum - (c === train.y[i] ? 1 : 0);
          for (let j = 0; j < d; j++) G[c * (d + 1) + j] += g * xs(train, i, j);
          G[c * (d + 1) + d] += g;
        }
      }
      for (let k = 0; k < W.length; k++) {
        V[k] = 0.9 * V[k] + G[k] / (end - s) + 1e-4 * W[k];
        W[k] -= lr * V[k];
      }
    }
  }
  const out = new Int32Array(test.n);
  for (let i = 0; i < test.n; i++) {
    let best = -Infinity;
    for (let c = 0; c < classes; c++) {
      let z = W[c * (d + 1) + d];
      for (let j = 0; j < d; j++) z += W[c * (d + 1) + j] * xs(test, i, j);
      if (z > best) [best, out[i]] = [z, c];
    }
  }
  return out;
}

describe('frozen-feature classifiers (native)', () => {
  test('weighted kNN equals the brute-force reference on random data, for several k, T and tile sizes', async () => {
    // Overlapping blobs: neighbours of several classes, so the weights decide.
    const mem = blobs(600, 12, 6, 3, 4), q = blobs(150, 12, 6, 3, 5);
    for (const [k, t, blockBytes] of [[200, 0.07, 256 * 2 ** 20], [200, 0.07, 4 * 40 * 7], [15, 0.5, 4 * 1000], [1, 0.07, 4 * 64]] as const) {
      const got = await knnPredict(mem, q, 6, { k, temperature: t, blockBytes });
      expect(Array.from(got)).toEqual(Array.from(knnReference(mem, q, 6, k, t)));
    }
    // k larger than the memory: all of it votes.
    const small = blobs(30, 12, 6, 3, 6);
    expect(Array.from(await knnPredict(small, q, 6, { k: 200 }))).toEqual(Array.from(knnReference(small, q, 6, 30, 0.07)));
  });

  test('logistic regression agrees with the float64 reference; separable blobs near perfect, noise near chance', async () => {
    const train = blobs(2000, 16, 5, 0.5, 7), test = blobs(500, 16, 5, 0.5, 7);
    const hard = blobs(3000, 8, 4, 2.5, 8), hardTest = blobs(1000, 8, 4, 2.5, 8);
    const ours = await logisticRegressionPredict(hard, hardTest, 4, { epochs: 5, seed: 0 });
    const ref = logregReference(hard, hardTest, 4, 5);
    let agree = 0, accOurs = 0, accRef = 0;
    for (let i = 0; i < hardTest.n; i++) {
      agree += ours[i] === ref[i] ? 1 : 0;
      accOurs += ours[i] === hardTest.y[i] ? 1 : 0;
      accRef += ref[i] === hardTest.y[i] ? 1 : 0;
    }
    expect(accRef / 10).toBeGreaterThan(50); // not a trivial problem: chance is 25%
    expect(agree).toBeGreaterThan(0.97 * hardTest.n);
    expect(Math.abs(accOurs - accRef) / 10).toBeLessThan(1.5);
    expect(await logisticRegression(train, test, 5, 5, 0)).toBeGreaterThan(97);
    expect(await knn(train, test, 5, { k: 10 })).toBeGreaterThan(97);
    // Other centres for the test set: its labels mean nothing to the classifier; chance is 20%.
    const unrelated = blobs(500, 16, 5, 0.5, 2);
    expect(await logisticRegression(train, unrelated, 5, 5, 0)).toBeLessThan(45);
    expect(await knn(train, unrelated, 5, { k: 10 })).toBeLessThan(45);
  });

  test('kNN memory limit is stratified; results are deterministic', async () => {
    const train = blobs(1000, 8, 4, 1.0, 3), test = blobs(200, 8, 4, 1.0, 3);
    const mem = knnMemory(train, 100, 0);
    expect(mem.n).toBe(100);
    for (let c = 0; c < 4; c++) expect(Array.from(mem.y).filter((y) => y === c).length).toBe(25);
    expect(knnMemory(train, 0, 0)).toBe(train);
    const a = await knn(mem, test, 4, { k: 20 }), b = await knn(knnMemory(train, 100, 0), test, 4, { k: 20 });
    expect(a).toBe(b);
    expect(await knn(train, test, 4, { k: 20 })).toBeGreaterThanOrEqual(a - 5);
    expect(await logisticRegression(train, test, 4, 3, 1)).toBe(await logisticRegression(train, test, 4, 3, 1));
  });

  test('bad input: a clear error naming the parameter', async () => {
    const f = blobs(20, 4, 2, 1, 1);
    const bad = { ...f, y: Int32Array.from(f.y, (y, i) => (i === 3 ? 7 : y)) };
    await expect(knnPredict(bad, f, 2)).rejects.toThrow(/label 7 at 3/);
    await expect(logisticRegressionPredict(bad, f, 2)).rejects.toThrow(/label 7 at 3/);
    expect(() => knnPredict(f, { ...f, d: 3 }, 2)).toThrow(/dim 3/);
    const { addon } = await import('../lib/native');
    expect(() => addon().knnPredict(f.x, f.y, new Float32Array(5), 4, { classes: 2 })).toThrow(/queries has 5 values, not a multiple of dim 4/);
    expect(() => addon().knnPredict(f.x, f.y, f.x, 4, { classes: 2, kk: 3 })).toThrow(/kk/);
    expect(() => addon().logisticRegression(f.x, [0, 1], f.x, 4, { classes: 2 })).toThrow(/labels must be an Int32Array/);
  });
});

// The frozen-feature classifiers behind the quickstart's proof of learning: they must separate
// what is separable, stay at chance on noise, and be deterministic.
import { knn, logisticRegression } from '../lib/evaluate';

function blobs(n: number, d: number, classes: number, spread: number, seed: number) {
  let s = seed >>> 0;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const centres = Array.from({ length: classes }, () => Array.from({ length: d }, () => r() * 3));
  const x = new Float32Array(n * d), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < d; j++) x[i * d + j] = centres[y[i]][j] + spread * r();
  }
  return { x, y, n, d };
}

describe('frozen-feature classifiers', () => {
  test('separable blobs: linear and kNN are near perfect; noise: both near chance', () => {
    // The same seed gives the same class centres (test points differ: fewer of them).
    const train = blobs(2000, 16, 5, 0.5, 7), test = blobs(500, 16, 5, 0.5, 7);
    expect(logisticRegression(train, test, 5, 5, 0)).toBeGreaterThan(97);
    expect(knn(train, test, 5, 10, 0)).toBeGreaterThan(97);
    // Other centres for the test set: its labels mean nothing to the classifier; chance is 20%.
    const unrelated = blobs(500, 16, 5, 0.5, 2);
    expect(logisticRegression(train, unrelated, 5, 5, 0)).toBeLessThan(45);
    expect(knn(train, unrelated, 5, 10, 0)).toBeLessThan(45);
  });

  test('kNN memory limit and determinism', () => {
    const train = blobs(1000, 8, 4, 1.0, 3), test = blobs(200, 8, 4, 1.0, 3);
    const a = knn(train, test, 4, 20, 100), b = knn(train, test, 4, 20, 100);
    expect(a).toBe(b);
    expect(knn(train, test, 4, 20, 0)).toBeGreaterThanOrEqual(a - 5);
    expect(logisticRegression(train, test, 4, 3, 1)).toBe(logisticRegression(train, test, 4, 3, 1));
  });
});

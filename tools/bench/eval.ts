// Benchmark of the frozen-feature evaluation (native/eval) at the quickstart's size: 60,000
// training and 10,000 test features of 64 dims, 10 classes (npm run bench:eval). Prints seconds
// of the linear probe (5 epochs), of the quickstart's kNN (k 20, memory 5,000) and of the
// InstDisc-style kNN over the whole training set (k 200). Numbers, not assertions.
//   npx tsx tools/bench/eval.ts [--train 60000] [--test 10000] [--dim 64] [--classes 10]
import { knn, knnMemory, logisticRegression, type Features } from '../../lib/feature-eval';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : def;
}

/** Gaussian-ish blobs: class centres plus uniform noise (a problem neither trivial nor hopeless). */
function blobs(n: number, d: number, classes: number, seed: number): Features {
  let s = seed >>> 0 || 1;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  let c = 12345;
  const rc = () => ((c = (Math.imul(c, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const centres = Array.from({ length: classes }, () => Array.from({ length: d }, () => rc()));
  const x = new Float32Array(n * d), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = Math.floor(((r() + 1) / 2) * classes) % classes;
    for (let j = 0; j < d; j++) x[i * d + j] = centres[y[i]][j] + 4 * r();
  }
  return { x, y, n, d };
}

async function time<T>(label: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const v = await f();
  process.stdout.write(`${label.padEnd(44)} ${((performance.now() - t0) / 1000).toFixed(3)} s   (${String(v)})\n`);
  return v;
}

async function main(): Promise<void> {
  const nTrain = arg('train', 60000), nTest = arg('test', 10000), d = arg('dim', 64), C = arg('classes', 10);
  const train = blobs(nTrain, d, C, 1), test = blobs(nTest, d, C, 2);
  process.stdout.write(`features: ${nTrain} train / ${nTest} test x ${d} dims, ${C} classes\n`);
  await time('logistic regression, 5 epochs (top-1 %)', () => logisticRegression(train, test, C, 5, 0));
  await time('kNN k 20, memory 5000 stratified (top-1 %)', () => knn(knnMemory(train, 5000, 0), test, C, { k: 20 }));
  await time(`kNN k 200, memory ${nTrain} (top-1 %)`, () => knn(train, test, C, { k: 200 }));
  await time(`kNN k 200, memory ${nTrain}, 16 MiB tiles (top-1 %)`, () => knn(train, test, C, { k: 200, blockBytes: 16 << 20 }));
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});

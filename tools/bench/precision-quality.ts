// bf16 against fp32 on what users care about: the quickstart's final gains (linear and kNN top-1 of
// the pre-trained teacher minus its random initialisation, 10,000 MNIST test digits), for the same
// seeds in both precisions. One seed's gains swing by several points between seeds, so only
// same-seed pairs are compared; the summary is the mean and spread of bf16 − fp32 over the seeds.
//   npm run bench:precision -- [--seeds 0,1,2] [--epochs 4] [--out /tmp/m2t-precision-quality]
// A finished run (its evaluation.json exists under --out) is reused, so an interrupted sweep continues.
// Runs dist/bin/mt-train.js (npm run build:ts first). Each run is the README's quickstart with `precision` and `seed` set: ~3–5 min on an idle 2-core CPU.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
};
const seeds = arg('seeds', '0,1,2').split(',').map(Number);
const epochs = Number(arg('epochs', '4'));
const out = path.resolve(arg('out', '/tmp/m2t-precision-quality'));
const repo = path.resolve(__dirname, '..', '..');
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new Error(`--seeds: non-negative integers, got ${arg('seeds', '')}`);
if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`--epochs: a positive integer, got ${arg('epochs', '')}`);

type Precision = 'fp32' | 'bf16';
interface Gains { linear: number; knn: number; monitor: number[] }

function run(precision: Precision, seed: number): Gains {
  const name = `${precision}-s${seed}-e${epochs}`;
  const dir = path.join(out, name);
  const evalFile = path.join(dir, 'evaluation.json');
  if (!fs.existsSync(evalFile)) {
    fs.mkdirSync(out, { recursive: true });
    const exp = path.join(out, `${name}.ts`);
    fs.writeFileSync(exp, `import q from ${JSON.stringify(path.join(repo, 'exps', 'quickstart'))};\n` +
      `export default q.extend({ precision: '${precision}', seed: ${seed}, maxEpoch: ${epochs} });\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(repo, 'dist', 'bin', 'mt-train.js'), '-f', exp, '--experiment-name', name, '--output-dir', out, '--progress', 'none'],
      { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`mt-train ${name} exited with ${r.status ?? r.signal} (log: ${dir}/train_log.txt)`);
    process.stderr.write(`${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  const e = JSON.parse(fs.readFileSync(evalFile, 'utf8')) as {
    pretrained: { linearTop1: number; knnTop1: number }; randomInit: { linearTop1: number; knnTop1: number };
  };
  const monitor = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('knn_top1'))
    .map((l) => (JSON.parse(l) as { knn_top1: number }).knn_top1);
  return { linear: e.pretrained.linearTop1 - e.randomInit.linearTop1, knn: e.pretrained.knnTop1 - e.randomInit.knnTop1, monitor };
}

const f = (x: number): string => (x >= 0 ? '+' : '') + x.toFixed(2);
const meanSd = (xs: number[]): string => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : NaN;
  return `${f(m)} (sd ${Number.isNaN(sd) ? '-' : sd.toFixed(2)})`;
};

const dLin: number[] = [], dKnn: number[] = [];
console.log(`quickstart, ${epochs} epoch(s): gains over the random init, bf16 vs fp32 on the same seed`);
console.log('seed   linear fp32  bf16   diff    kNN fp32  bf16   diff    kNN monitor fp32 | bf16');
for (const s of seeds) {
  const a = run('fp32', s), b = run('bf16', s);
  dLin.push(b.linear - a.linear);
  dKnn.push(b.knn - a.knn);
  console.log(`${String(s).padEnd(6)} ${f(a.linear).padStart(11)} ${f(b.linear).padStart(6)} ${f(b.linear - a.linear).padStart(6)}` +
    `  ${f(a.knn).padStart(9)} ${f(b.knn).padStart(6)} ${f(b.knn - a.knn).padStart(6)}    ${a.monitor.join(' ')} | ${b.monitor.join(' ')}`);
}
console.log(`bf16 − fp32 over ${seeds.length} seed(s): linear ${meanSd(dLin)}, kNN ${meanSd(dKnn)}`);

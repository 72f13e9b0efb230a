// What a step's input costs on the JS thread: the synchronous part of Momentum2Teacher.step()
// (argument checks, plus — for a user Float32Array — the copy into a tensor and the finiteness
// scan) for a loader batch (used in place) against the same values in a user array, and the
// whole step for scale. The input cost depends on the batch shape only, so it is sampled many
// times on a narrow model of the same architecture (width 1/16); the whole step is timed on the
// real one. Prints one line per configuration (median and min: the machine is shared).
//   npx tsx tools/bench/step-input.ts [steps=5] [samples=41]
import { performance } from 'perf_hooks';
import { Dataset, PretrainLoader, byolView1, byolView2 } from '../../lib/data';
import { Momentum2Teacher, type Arch, type ImageBatch } from '../../lib/engine';

const steps = Number(process.argv[2] ?? 5);
const samples = Number(process.argv[3] ?? 41);
const configs: { arch: Arch; size: number; batch: number; smallStem: boolean }[] = [
  { arch: 'resnet50', size: 112, batch: 16, smallStem: false },
  { arch: 'resnet18', size: 32, batch: 64, smallStem: true },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  for (const c of configs) {
    const src = c.size + 8;
    const px = new Uint8Array(c.batch * src * src * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) >>> 24;
    const ds = Dataset.fromPixels({ data: px, n: c.batch, height: src, width: src, channels: 3 });
    const loader = new PretrainLoader(ds, { batchSize: c.batch, threads: 2, view1: byolView1({ size: c.size }), view2: byolView2({ size: c.size }) });
    const real = new Momentum2Teacher({ arch: c.arch, smallStem: c.smallStem, totalIterations: 1000, threads: 2 });
    const narrow = new Momentum2Teacher({ arch: c.arch, smallStem: c.smallStem, width: 1 / 16, hiddenDim: 64, outDim: 32, totalIterations: 1000, threads: 2 });
    // The batches are taken first and the loader closed, so its threads do not compete with the
    // timed calls; the two kinds alternate which goes first.
    const batches = [];
    for (let e = 0; batches.length < 2; e++) for await (const b of loader.epoch(e)) batches.push(b);
    loader.close();
    const sync = { lent: [] as number[], user: [] as number[] };
    const whole: number[] = [];
    for (let i = 0; i <= samples + steps; i++) {
      const b = batches[i % 2];
      const net = i <= samples ? narrow : real;
      const user: [ImageBatch, ImageBatch] = [{ data: b.view1.data.slice(), shape: b.view1.shape }, { data: b.view2.data.slice(), shape: b.view2.shape }];
      const runs = [['lent', b.view1, b.view2], ['user', ...user]] as const;
      for (const [kind, v1, v2] of i % 2 ? [...runs].reverse() : runs) {
        const t0 = performance.now();
        const p = net.step(v1, v2, 0.01);
        if (net === narrow) sync[kind].push(performance.now() - t0);
        await p;
        if (net === real) whole.push(performance.now() - t0);
      }
    }
    for (const b of batches) b.release();
    sync.lent.shift(); sync.user.shift(); // the first call also checks the batch's memory estimate
    const ms = (xs: number[]) => `${median(xs).toFixed(3)} (min ${Math.min(...xs).toFixed(3)})`;
    const saving = median(sync.user) - median(sync.lent);
    console.log(`${c.arch} ${c.size}px b${c.batch}: step input on the JS thread, median of ${sync.user.length}: ` +
      `loader batch ${ms(sync.lent)} ms, user array (copy + scan) ${ms(sync.user)} ms; saving ${saving.toFixed(3)} ms/step ` +
      `= ${((100 * saving) / median(whole)).toFixed(2)} % of a ${median(whole).toFixed(0)} ms step`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });

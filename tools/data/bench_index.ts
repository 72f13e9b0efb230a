// How long indexing an ImageNet-sized image folder takes: 1,000 classes × 1,281 empty files
// (1.28 M, ImageNet's training-set layout and names), scanned once, then opened from the cache.
//   tsx tools/data/bench_index.ts [--dir /tmp/m2t-index-bench] [--classes 1000] [--per-class 1281]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Dataset } from '../../lib/data';

const args = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = args.indexOf(k);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : d;
};
const dir = opt('--dir', path.join(os.tmpdir(), 'm2t-index-bench'));
const classes = Number(opt('--classes', '1000'));
const perClass = Number(opt('--per-class', '1281'));

async function main(): Promise<void> {
  const root = path.join(dir, 'train');
  const cache = path.join(dir, 'cache');
  if (!fs.existsSync(path.join(root, '.complete'))) {
    console.log(`creating ${classes} × ${perClass} empty files in ${root} …`);
    const t = Date.now();
    for (let c = 0; c < classes; c++) {
      const d = path.join(root, `n${String(1440764 + c * 7919).padStart(8, '0')}`);
      fs.mkdirSync(d, { recursive: true });
      for (let i = 0; i < perClass; i++) fs.closeSync(fs.openSync(path.join(d, `${path.basename(d)}_${10026 + i * 13}.JPEG`), 'w'));
    }
    // Directory mtimes a while back, as for a dataset copied earlier (the cache distrusts
    // directories modified within a second of its scan).
    const past = new Date(Date.now() - 60_000);
    for (const e of fs.readdirSync(root)) fs.utimesSync(path.join(root, e), past, past);
    fs.utimesSync(root, past, past);
    fs.writeFileSync(path.join(dir, '.complete-marker'), '');
    fs.renameSync(path.join(dir, '.complete-marker'), path.join(root, '.complete'));
    fs.utimesSync(root, past, past);
    console.log(`  created in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  fs.rmSync(cache, { recursive: true, force: true });
  for (const threads of [1, os.availableParallelism()]) {
    const t0 = performance.now();
    const ds = await Dataset.openFolder(root, { cache: false, threads });
    console.log(`scan, ${threads} thread(s): ${ds.size} images, ${ds.numClasses} classes in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  }
  const first = await Dataset.openFolder(root, { cache });
  console.log(`scan + write cache: ${first.info().seconds!.toFixed(2)} s (${(fs.statSync(first.info().cachePath!).size / 1e6).toFixed(1)} MB cache)`);
  const t1 = performance.now();
  const again = await Dataset.openFolder(root, { cache });
  console.log(`open from cache: ${((performance.now() - t1) / 1000).toFixed(2)} s (fromCache: ${again.info().fromCache}, ${again.size} images)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// Run with `node --expose-gc`: starts async calls on native objects, drops every reference and
// collects garbage while the calls run. Each object is registered with a FinalizationRegistry;
// an object finalized before its call settled means the wrapper was freed under running work
// (a use-after-free). Prints one JSON line {rounds, calls, early}; a crash exits non-zero.
const fs = require('fs');
const os = require('os');
const path = require('path');
const addon = require(path.join(__dirname, '..', '..', process.env.M2T_ADDON_DIR || 'build/Release', 'm2t.node'));

const rounds = Number(process.argv[2] || 20);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-life-'));
const finalized = new Set();
const registry = new FinalizationRegistry((id) => finalized.add(id));
let early = 0;
let calls = 0;
let nextId = 0;

function tick() {
  return new Promise((r) => setImmediate(r));
}

// Starts `start(obj)` on a fresh object, drops the object, collects, and records whether the
// object was finalized before the promise settled.
async function orphan(make, start) {
  const id = nextId++;
  let p;
  {
    let obj = make();
    registry.register(obj, id);
    p = start(obj).then(
      () => 'ok',
      (e) => `rejected: ${e.message}`,
    );
    obj = null;
  }
  calls++;
  let settled = false;
  p.then(() => (settled = true));
  for (let i = 0; i < 4 && !settled; i++) {
    global.gc();
    await tick();
    if (finalized.has(id) && !settled) early++;
  }
  await p;
  return p;
}

const m2tConfig = { arch: 'resnet18', width: 0.25, smallStem: true, hiddenDim: 32, outDim: 16, totalIterations: 10, threads: 1 };
const imgs = new Float32Array(4 * 32 * 32 * 3).map((_, i) => Math.sin(i));
const shape = [4, 32, 32, 3];

// A tiny IDX image file (magic 0x00000803, dims [n, rows, cols]).
const idx = path.join(dir, 'images.idx');
{
  const n = 64, h = 28, w = 28;
  const b = Buffer.alloc(16 + n * h * w);
  b.writeUInt32BE(0x803, 0);
  b.writeUInt32BE(n, 4);
  b.writeUInt32BE(h, 8);
  b.writeUInt32BE(w, 12);
  fs.writeFileSync(idx, b);
}

(async () => {
  const ckpt = path.join(dir, 'm.safetensors');
  await new addon.Momentum2Teacher(m2tConfig).save(ckpt, {});
  for (let r = 0; r < rounds; r++) {
    await orphan(() => new addon.Momentum2Teacher(m2tConfig), (m) => m.step(imgs, shape, imgs, shape, 0.1));
    await orphan(() => new addon.Momentum2Teacher(m2tConfig), (m) => m.save(ckpt, { round: String(r) }));
    await orphan(() => new addon.Momentum2Teacher(m2tConfig), (m) => m.load(ckpt));
    await orphan(() => new addon.LinearProbe({ arch: 'resnet18', width: 0.25, smallStem: true, numClasses: 4, threads: 1 }), (m) => m.features(imgs, shape));
    await orphan(() => new addon.DataSet(), (d) => d.openIdx(idx));
  }
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ rounds, calls, early }) + '\n');
})().catch((e) => {
  process.stderr.write(String(e && e.stack) + '\n');
  process.exit(3);
});

// N-API argument fuzzing (issue 13): random calls over every exported class, method and
// function of the addon, with a fixed seed. Half the calls start from a valid argument list and
// mutate one to three positions (so they reach past the first check); the rest are random.
// Each call's outcome is counted: returned/resolved, or the class of what was thrown. Anything
// thrown that is not an Error with a non-empty one-line message is a defect, counted as such.
// A crash ends the process (the parent sees the exit status). Prints one JSON line of counts.
//   node napi-fuzz-child.js <calls> <seed>
const fs = require('fs');
const os = require('os');
const path = require('path');
const addon = require(path.join(__dirname, '..', '..', process.env.M2T_ADDON_DIR || 'build/Release', 'm2t.node'));

const CALLS = Number(process.argv[2] || 10000);
let state = Number(process.argv[3] || 1) >>> 0;
function rand() { // mulberry32
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-napi-fuzz-'));
// Relative paths among the random strings ('resnet18', 'sgd', …) land here, not in the checkout.
process.chdir(dir);
const ckpt = path.join(dir, 'ok.safetensors');
const garbage = path.join(dir, 'garbage.safetensors');
fs.writeFileSync(garbage, Buffer.from('\x10\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype":"F32"}}'));
const imgDir = path.join(dir, 'imgs');
fs.mkdirSync(path.join(imgDir, 'a'), { recursive: true });
fs.mkdirSync(path.join(imgDir, 'b'), { recursive: true });
// 1x1 grey PNG
const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010800000000376ef9240000000a49444154789c6360000000020001e221bc330000000049454e44ae426082', 'hex');
fs.writeFileSync(path.join(imgDir, 'a', 'x.png'), png);
fs.writeFileSync(path.join(imgDir, 'b', 'y.png'), png);

const enc = { arch: 'resnet18', width: 1 / 64, smallStem: true, threads: 1 };
const m2tCfg = { ...enc, hiddenDim: 8, outDim: 4, totalIterations: 4 };
const probeCfg = { ...enc, numClasses: 3 };
const img = (n, s = 8) => new Float32Array(n * s * s * 3).fill(0.25);
const view = { size: [8, 8], crop: 'random-resized', resize: 8 };

const numbers = [0, 1, 2, 3, -1, 0.5, -0, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53, 1e300, 7, 64, 1 / 64];
const strings = ['', 'resnet18', 'resnet50', 'nope', 'sgd', 'lars', ckpt, garbage, imgDir, path.join(dir, 'missing'), 'random-resized', 'center', '\u0000', 'x'.repeat(300)];
function randomValue(depth = 0) {
  switch (Math.floor(rand() * (depth > 1 ? 9 : 13))) {
    case 0: return undefined;
    case 1: return null;
    case 2: return rand() < 0.5;
    case 3: case 4: return pick(numbers);
    case 5: return pick(strings);
    case 6: return pick([new Float32Array(Math.floor(rand() * 400)), new Int32Array(Math.floor(rand() * 8)).fill(pick([0, 1, -1, 5])), new Uint8Array(Math.floor(rand() * 64)), new Float64Array(3)]);
    case 7: return pick([Symbol('s'), 10n, () => 1, new Date(0), new ArrayBuffer(8)]);
    case 8: return pick(live) ?? {};
    case 9: case 10: return Array.from({ length: Math.floor(rand() * 5) }, () => randomValue(depth + 1));
    default: {
      const o = {};
      const keys = ['arch', 'width', 'smallStem', 'threads', 'seed', 'hiddenDim', 'outDim', 'totalIterations', 'numClasses', 'optimizer', 'batchSize', 'views', 'size', 'crop', 'shape', 'data', 'n', 'h', 'w', 'prefetch', 'maxAttempts', 'bogus'];
      for (let i = Math.floor(rand() * 5); i > 0; i--) o[pick(keys)] = randomValue(depth + 1);
      return o;
    }
  }
}

// A free loopback port for ProcessGroup stores (world size 1: nothing else ever connects).
function freePort() {
  return new Promise((resolve) => {
    const srv = require('net').createServer().listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
}
async function pgOptions() { return { rank: 0, worldSize: 1, host: '127.0.0.1', port: await freePort(), timeoutMs: 500 }; }
let pgBase = { rank: 0, worldSize: 1, host: '127.0.0.1', port: 1, timeoutMs: 500 };

// Live objects to call methods on (and to pass as arguments); rebuilt when the pool drains.
const live = [];
async function fresh(kind) {
  switch (kind) {
    case 'Momentum2Teacher': return new addon.Momentum2Teacher(m2tCfg);
    case 'LinearProbe': return new addon.LinearProbe(probeCfg);
    case 'DataSet': {
      const d = new addon.DataSet();
      if (rand() < 0.5) d.setPixels(new Uint8Array(4 * 8 * 8 * 3).fill(9), 4, 8, 8, 3, new Int32Array([0, 1, 0, 1]));
      return d;
    }
    case 'ProcessGroup': {
      // A group of one on a free loopback port: connect() and every collective return at once.
      const g = new addon.ProcessGroup(await pgOptions());
      if (rand() < 0.8) await g.connect();
      return g;
    }
    case 'DataLoader': {
      const d = new addon.DataSet();
      d.setPixels(new Uint8Array(4 * 8 * 8 * 3).fill(9), 4, 8, 8, 3, new Int32Array([0, 1, 0, 1]));
      return new addon.DataLoader(d, { batchSize: 2, views: [view], threads: 1, prefetch: 1 });
    }
  }
}

// Valid argument lists per method (the mutation base).
const valid = {
  Momentum2Teacher: {
    constructor: () => [m2tCfg],
    step: () => [img(2), [2, 8, 8, 3], img(2), [2, 8, 8, 3], 0.1],
    iteration: () => [], tau: () => [], alpha: () => [],
    stateDict: () => [rand() < 0.5],
    loadStateDict: (o) => [o.stateDict(false), false],
    save: () => [ckpt, { k: 'v' }],
    load: () => [ckpt],
    memory: () => [rand() < 0.5],
  },
  LinearProbe: {
    constructor: () => [probeCfg],
    loadEncoder: () => [new addon.Momentum2Teacher(m2tCfg).stateDict(false), 'teacher_encoder.'],
    trainStep: () => [img(2), [2, 8, 8, 3], new Int32Array([0, 2]), 0.1],
    evaluate: () => [img(2), [2, 8, 8, 3], new Int32Array([1, 2])],
    features: () => [img(2), [2, 8, 8, 3]],
    stateDict: () => [true], loadStateDict: (o) => [o.stateDict(true), true],
    save: () => [path.join(dir, 'probe.safetensors'), {}], load: () => [path.join(dir, 'probe.safetensors')],
  },
  DataSet: {
    constructor: () => [],
    openFolder: () => [imgDir, null, 1], openIdx: () => [garbage],
    setPixels: () => [new Uint8Array(2 * 4 * 4 * 3), 2, 4, 4, 3, new Int32Array([0, 1])],
    setEncoded: () => [[png, png], new Int32Array([0, 1]), ['a', 'b']],
    setSubset: () => [live.find((x) => x instanceof addon.DataSet) ?? {}, 1],
    size: () => [], classes: () => [], labels: () => [], name: () => [0], info: () => [],
    decode: () => [0], augment: () => [0, [view], 1, 0, 0],
  },
  DataLoader: {
    constructor: () => [live.find((x) => x instanceof addon.DataSet) ?? new addon.DataSet(), { batchSize: 2, views: [view], threads: 1, prefetch: 1 }],
    batchesPerEpoch: () => [], samplesPerRank: () => [], startEpoch: () => [0, 0], next: () => [], report: () => [], close: () => [],
  },
  ProcessGroup: {
    constructor: () => [pgBase],
    connect: () => [], allreduceSum: () => [new Float32Array(16)], barrier: () => [rand() < 0.5 ? undefined : 100],
  },
  readSafetensors: () => [rand() < 0.5 ? ckpt : garbage],
  knnPredict: () => [new Float32Array(8 * 4).fill(0.5), new Int32Array(8), new Float32Array(2 * 4).fill(0.25), 4, { classes: 2, k: 3 }],
  logisticRegression: () => [new Float32Array(8 * 4).fill(0.5), new Int32Array(8), new Float32Array(2 * 4), 4, { classes: 2, epochs: 1 }],
  estimateMemory: () => ['Momentum2Teacher', m2tCfg, { n: 2, h: 8, w: 8 }],
  releaseBatchArrays: () => [[new Float32Array(4)]],
  epochIndices: () => [10, 1, 0, 0, 1, true],
  setMaxImagePixels: () => [],
  backends: () => [],
};

// NAPI_FUZZ_TRACE=<file>: each call (target and a summary of its arguments) before it is made.
const trace = process.env.NAPI_FUZZ_TRACE ? fs.openSync(process.env.NAPI_FUZZ_TRACE, 'w') : 0;
function describe(v, depth = 0) {
  if (Array.isArray(v)) return depth > 2 ? '[…]' : `[${v.map((x) => describe(x, depth + 1)).join(', ')}]`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length})`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint' || typeof v === 'symbol' || typeof v === 'function') return typeof v;
  if (v && typeof v === 'object') {
    if (v.constructor && v.constructor !== Object) return v.constructor.name;
    return depth > 2 ? '{…}' : `{${Object.entries(v).map(([k, x]) => `${k}: ${describe(x, depth + 1)}`).join(', ')}}`;
  }
  return String(v);
}

const counts = { calls: 0, mutated: 0, random: 0, ok: 0, TypeError: 0, RangeError: 0, Error: 0, nonError: 0, badMessage: 0, timedOut: 0 };
const byTarget = {};
const defects = [];

function classify(e, target) {
  if (!(e instanceof Error)) {
    counts.nonError++;
    defects.push(`${target}: threw a non-Error ${String(e)}`);
    return;
  }
  if (!e.message || e.message.includes('\n')) {
    counts.badMessage++;
    defects.push(`${target}: message ${JSON.stringify(e.message)}`);
  }
  const k = e.name === 'TypeError' || e.name === 'RangeError' ? e.name : 'Error';
  counts[k]++;
}

async function settle(v) {
  if (!(v instanceof Promise)) return v;
  let timer;
  const t = new Promise((r) => (timer = setTimeout(() => r('__timeout__'), 3000)));
  const r = await Promise.race([v, t]);
  clearTimeout(timer);
  if (r === '__timeout__') counts.timedOut++;
  return r;
}

function mutate(args) {
  const a = args.slice();
  const n = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < n; i++) {
    const op = rand();
    if (op < 0.7 || a.length === 0) a[Math.floor(rand() * (a.length + 1))] = randomValue();
    else if (op < 0.85) a.length = Math.floor(rand() * a.length);
    else a.push(randomValue());
  }
  return a;
}

(async () => {
  fs.writeFileSync(path.join(dir, 'x'), '');
  await new addon.Momentum2Teacher(m2tCfg).save(ckpt, {});
  await new addon.LinearProbe(probeCfg).save(path.join(dir, 'probe.safetensors'), {});
  pgBase = await pgOptions();
  const classes = ['Momentum2Teacher', 'LinearProbe', 'DataSet', 'DataLoader', 'ProcessGroup'];
  const functions = Object.keys(addon).filter((k) => !classes.includes(k));
  for (const k of Object.keys(addon)) if (!(k in valid)) throw new Error(`export ${k} has no fuzz entry`);
  for (const c of classes) live.push(await fresh(c));
  while (counts.calls < CALLS) {
    const isFn = rand() < 0.25;
    let target, thisObj, fn, isCtor = false, base;
    if (isFn) {
      const name = pick(functions);
      target = name;
      fn = addon[name];
      base = valid[name]();
    } else {
      const cls = pick(classes);
      const methods = Object.keys(valid[cls]);
      const m = pick(methods);
      target = `${cls}.${m}`;
      if (m === 'constructor') {
        isCtor = true;
        fn = addon[cls];
      } else {
        thisObj = rand() < 0.97 ? live.find((x) => x instanceof addon[cls]) : pick([{}, live[0], undefined]);
        fn = addon[cls].prototype[m];
      }
      try {
        base = valid[cls][m](thisObj);
      } catch {
        base = [];
      }
    }
    const doMutate = rand() < 0.5;
    const args = doMutate ? mutate(base) : Array.from({ length: Math.floor(rand() * 7) }, () => randomValue());
    counts[doMutate ? 'mutated' : 'random']++;
    counts.calls++;
    byTarget[target] = (byTarget[target] || 0) + 1;
    if (trace) fs.writeSync(trace, `${counts.calls} ${target} ${describe(args)}\n`);
    try {
      const r = isCtor ? new fn(...args) : fn.apply(thisObj, args);
      await settle(r);
      counts.ok++;
      if (isCtor && rand() < 0.2) live.push(r);
    } catch (e) {
      classify(e, target);
      if (trace) fs.writeSync(trace, `  -> ${e && e.name}: ${e && e.message}\n`);
    }
    if (live.length > 12) live.splice(4, live.length - 8);
    if (counts.calls % 500 === 0) global.gc?.();
  }
  for (const o of live) if (o instanceof addon.DataLoader) o.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ ...counts, targets: Object.keys(byTarget).length, defects: defects.slice(0, 20) }) + '\n');
  process.exit(0);
})().catch((e) => {
  process.stderr.write(`fuzz driver failed: ${e && e.stack}\n`);
  process.exit(3);
});

// Exact resume: a run of N iterations and a run stopped part-way and resumed end with the same
// weights, bit for bit (CPU, one thread), and the same losses.
import * as fs from 'fs';
import * as path from 'path';
import { readCheckpoint } from '../lib/engine';
import { pretrainBase } from '../lib/experiment';
import { FILES, readRunState } from '../lib/checkpoint';
import { pretrain } from '../lib/pretrain';
import { addonBuilt, dataLayerBuilt, tmpDir } from './helpers/dist';
import { makeImageFolder } from './helpers/images';

const maybe = addonBuilt() ? describe : describe.skip;

const tiny = pretrainBase.extend({
  batchSize: 8,
  maxEpoch: 3,
  warmupEpochs: 1,
  threads: 1,
  model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 64, outDim: 32 },
  data: { train: { kind: 'synthetic', size: 40, numClasses: 4, imageSize: 36 }, imageSize: 32, workers: 1 },
});

function losses(dir: string): [number, number, number][] {
  return fs
    .readFileSync(path.join(dir, FILES.metrics), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .map((r) => [r.iteration, r.lr, r.loss]);
}

async function expectSameWeights(a: string, b: string): Promise<void> {
  const [ca, cb] = await Promise.all([readCheckpoint(a), readCheckpoint(b)]);
  const keys = Object.keys(ca.tensors).sort();
  expect(Object.keys(cb.tensors).sort()).toEqual(keys);
  const differing = keys.filter((k) => !Buffer.from(ca.tensors[k].data.buffer, ca.tensors[k].data.byteOffset, ca.tensors[k].data.byteLength).equals(
    Buffer.from(cb.tensors[k].data.buffer, cb.tensors[k].data.byteOffset, cb.tensors[k].data.byteLength),
  ));
  expect(differing).toEqual([]);
  expect(ca.metadata['m2t.state']).toEqual(cb.metadata['m2t.state']);
}

maybe('exact resume (15 iterations, stopped and resumed)', () => {
  const root = tmpDir('m2t-resume-');
  let full: string;

  beforeAll(async () => {
    const r = await pretrain({ experiment: tiny, name: 'full', outputDir: root });
    expect(r.iterations).toBe(15);
    expect(r.interrupted).toBe(false);
    full = r.outputDir;
  });

  test.each([
    ['mid-epoch', 7],
    ['at an epoch boundary', 10],
  ])('stopped %s (iteration %d) and resumed: same weights, same losses', async (_what, stopAt) => {
    const name = `part${stopAt}`;
    const a = await pretrain({ experiment: tiny, name, outputDir: root, stopAtIteration: stopAt });
    expect(a.interrupted).toBe(true);
    expect(a.iterations).toBe(stopAt);
    // Mid-epoch: an interrupted_ckpt; at an epoch boundary, the epoch's own checkpoint.
    const file = path.join(a.outputDir, stopAt % 5 ? FILES.interrupted : FILES.lastEpoch);
    expect(a.checkpoint).toBe(file);
    expect(fs.existsSync(path.join(a.outputDir, FILES.interrupted))).toBe(stopAt % 5 !== 0);
    const st = readRunState(file);
    expect(st.iteration).toBe(stopAt);
    expect([st.epoch, st.batch]).toEqual([Math.floor(stopAt / 5), stopAt % 5]);

    const b = await pretrain({ experiment: tiny, name, outputDir: root, resume: true });
    expect(b.interrupted).toBe(false);
    expect(b.iterations).toBe(15);
    expect(fs.existsSync(path.join(b.outputDir, FILES.interrupted))).toBe(false);
    await expectSameWeights(path.join(full, FILES.lastEpoch), path.join(b.outputDir, FILES.lastEpoch));
    expect(losses(b.outputDir)).toEqual(losses(full));
  });

  test('resuming a finished run says there is nothing to do', async () => {
    await expect(pretrain({ experiment: tiny, name: 'full', outputDir: root, resume: true })).rejects.toThrow(/nothing to resume/);
  });

  test('resuming with a different experiment is refused with the differences', async () => {
    await pretrain({ experiment: tiny, name: 'diff', outputDir: root, stopAtIteration: 3 });
    await expect(pretrain({ experiment: tiny, name: 'diff', outputDir: root, resume: true, batchSize: 4 })).rejects.toThrow(
      /batchSize: checkpoint 8, now 4/,
    );
    await expect(pretrain({ experiment: tiny.extend({ maxEpoch: 4 }), name: 'diff', outputDir: root, resume: true })).rejects.toThrow(
      /maxEpoch: checkpoint 3, now 4/,
    );
  });
});

(dataLayerBuilt() ? describe : describe.skip)('exact resume on an image folder (native data pipeline)', () => {
  const root = tmpDir('m2t-resume-folder-');
  let exp: typeof tiny;
  beforeAll(async () => {
    process.env.M2T_CACHE_DIR = path.join(root, 'cache');
    const { train } = await makeImageFolder(path.join(root, 'data'), { classes: 4, train: 10, val: 1 });
    exp = tiny.extend({ data: { train: { kind: 'imagefolder', root: train }, workers: 2 } });
  });

  test('stopped mid-epoch and resumed (with another worker count): same weights, same losses', async () => {
    const full = await pretrain({ experiment: exp, name: 'full', outputDir: root });
    expect(full.iterations).toBe(15);
    const a = await pretrain({ experiment: exp, name: 'part', outputDir: root, stopAtIteration: 8 });
    expect(a.iterations).toBe(8);
    const b = await pretrain({ experiment: exp.extend({ data: { workers: 1 } }), name: 'part', outputDir: root, resume: true });
    expect(b.iterations).toBe(15);
    await expectSameWeights(path.join(full.outputDir, FILES.lastEpoch), path.join(b.outputDir, FILES.lastEpoch));
    expect(losses(b.outputDir)).toEqual(losses(full.outputDir));
  });
});

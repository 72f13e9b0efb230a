// Issue 13, finding 6 in the run loop: the first step that leaves a non-finite tensor in the
// state stops the run at that iteration, naming the tensor; the checkpoint written before
// stays, finite. (The engine's own report — step() naming the tensor, save() refusing — is
// tested in harden-engine.test.ts; here a model wrapper poisons one step.)
import * as fs from 'fs';
import * as path from 'path';
import { FILES, readRunState } from '../lib/checkpoint';
import { Momentum2Teacher, readCheckpoint, type M2TConfig } from '../lib/engine';
import { pretrainBase } from '../lib/experiment';
import { pretrain, type PretrainModel } from '../lib/pretrain';
import { addonBuilt, tmpDir } from './helpers/dist';

const maybe = addonBuilt() ? describe : describe.skip;

const tiny = pretrainBase.extend({
  batchSize: 8,
  maxEpoch: 3,
  warmupEpochs: 1,
  threads: 1,
  model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 64, outDim: 32 },
  data: { train: { kind: 'synthetic', size: 32, numClasses: 4, imageSize: 36 }, imageSize: 32, workers: 1 },
});

maybe('divergence', () => {
  test('a non-finite state after iteration 6 stops the run there; the epoch-1 checkpoint stays finite', async () => {
    const root = tmpDir('m2t-div-');
    const createModel = (c: M2TConfig): PretrainModel => {
      const m = new Momentum2Teacher(c);
      return {
        get iteration() {
          return m.iteration;
        },
        save: (p, meta) => m.save(p, meta),
        load: (p) => m.load(p),
        async step(v1, v2, lr) {
          const r = await m.step(v1, v2, lr);
          return r.iteration === 6 ? { ...r, nonFinite: 'student_encoder.bn1.running_var' } : r;
        },
      };
    };
    await expect(pretrain({ experiment: tiny, name: 'div', outputDir: root, createModel })).rejects.toThrow(
      /^tensor 'student_encoder\.bn1\.running_var' holds a non-finite value after iteration 6 \(loss [\d.]+, lr [\d.e-]+\); training diverged; the last checkpoint written stays$/,
    );
    const ckpt = path.join(root, 'div', FILES.lastEpoch);
    expect(readRunState(ckpt).iteration).toBe(4);
    const t = await readCheckpoint(ckpt);
    for (const [k, v] of Object.entries(t.tensors)) expect([k, v.data.every(Number.isFinite)]).toEqual([k, true]);
    const lines = fs.readFileSync(path.join(root, 'div', FILES.metrics), 'utf8').trim().split('\n');
    expect(JSON.parse(lines[lines.length - 1]).iteration).toBe(6);
    fs.rmSync(root, { recursive: true, force: true });
  });
});

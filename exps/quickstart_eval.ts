// quickstart_eval — linear evaluation of the quickstart's teacher encoder on MNIST: a Linear +
// BatchNorm1d classifier on frozen features, trained on the 60,000 training digits and scored on
// the 10,000 test digits.
import { linearEvalBase } from 'momentum2-teacher';

const MNIST_MEAN: [number, number, number] = [0.1307, 0.1307, 0.1307];
const MNIST_STD: [number, number, number] = [0.3081, 0.3081, 0.3081];

export default linearEvalBase.extend({
  batchSize: 256,
  maxEpoch: 2,
  basicLrPerImg: 0.5 / 256,
  scheduler: 'cos',
  milestones: [],
  evalInterval: 1,
  printInterval: 50,
  data: {
    train: { kind: 'mnist', split: 'train' },
    val: { kind: 'mnist', split: 'test' },
    imageSize: 28,
    workers: 2,
    augmentation: {
      crop: { scale: [0.8, 1.0], ratio: [3 / 4, 4 / 3] },
      flip: { p: 0 },
      resizeSize: 28,
      mean: MNIST_MEAN,
      std: MNIST_STD,
    },
  },
});

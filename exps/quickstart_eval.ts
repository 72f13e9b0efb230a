// quickstart_eval — the reference's linear-evaluation protocol (augmented training images,
// Linear + BatchNorm1d on frozen features, SGD) applied to the quickstart's teacher on MNIST:
//   npx mt-eval -f exps/quickstart_eval.ts --experiment-name quickstart
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
    imageSize: 20,
    workers: 2,
    augmentation: {
      crop: { scale: [0.8, 1.0], ratio: [3 / 4, 4 / 3] },
      flip: { p: 0 },
      resizeSize: 20,
      mean: MNIST_MEAN,
      std: MNIST_STD,
    },
  },
});

// 8 V100, total batch 1024, SGD, 100 epochs (linear-eval top-1 70.7 in the paper, ~1.8 days).
import base from '../momentum2_teacher_exp';

export default base.extend({
  batchSize: 1024,
  maxEpoch: 100,
});

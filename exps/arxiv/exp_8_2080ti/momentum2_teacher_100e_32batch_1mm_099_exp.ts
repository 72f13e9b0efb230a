// 8 2080Ti, 32 images per GPU (total batch 256), one machine, τ_base 0.99, SGD, 100 epochs
// (top-1 70.4, ~2.5 days).
import base from '../momentum2_teacher_exp';

export default base.extend({
  batchSize: 256,
  maxEpoch: 100,
  tauBase: 0.99,
});

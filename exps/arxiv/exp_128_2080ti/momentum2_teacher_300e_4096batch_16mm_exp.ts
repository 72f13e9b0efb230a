// Total batch 4096, LARS, lr 0.3/256 per image, 300 epochs (top-1 73.7 / 72.3).
import base from './momentum2_teacher_100e_4096batch_16mm_exp';

export default base.extend({
  maxEpoch: 300,
  basicLrPerImg: 0.3 / 256,
});

// 32 V100 or 128 2080Ti (MACHINE/MACHINE_TOTAL), total batch 4096, LARS (η 0.001, μ 0.9, wd 1e-6),
// lr 0.45/256 per image, 100 epochs (top-1 70.3 on 32 V100 in ~11 h; 69.0 on 128 2080Ti in ~5 h).
import base from '../momentum2_teacher_exp';

export default base.extend({
  batchSize: 4096,
  maxEpoch: 100,
  basicLrPerImg: 0.45 / 256,
  optimizer: { name: 'lars', momentum: 0.9, weightDecay: 1e-6, eta: 0.001 },
});

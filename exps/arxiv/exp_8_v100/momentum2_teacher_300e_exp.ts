// 8 V100, total batch 1024, SGD, 300 epochs (top-1 73.8, ~5.5 days).
import base from './momentum2_teacher_100e_exp';

export default base.extend({ maxEpoch: 300 });

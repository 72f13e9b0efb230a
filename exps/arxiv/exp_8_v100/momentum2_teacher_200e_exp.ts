// 8 V100, total batch 1024, SGD, 200 epochs (top-1 72.7, ~3.6 days).
import base from './momentum2_teacher_100e_exp';

export default base.extend({ maxEpoch: 200 });

// 8 2080Ti, total batch 256, SGD, 200 epochs (top-1 72.3, ~5 days).
import base from './momentum2_teacher_100e_32batch_1mm_099_exp';

export default base.extend({ maxEpoch: 200 });

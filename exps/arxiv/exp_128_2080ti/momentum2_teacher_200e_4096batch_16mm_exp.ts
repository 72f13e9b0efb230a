// Total batch 4096, LARS, lr 0.45/256 per image, 200 epochs (top-1 72.5 / 71.5).
import base from './momentum2_teacher_100e_4096batch_16mm_exp';

export default base.extend({ maxEpoch: 200 });

// linear_eval_exp_byol — linear evaluation, BYOL setting (the one behind the paper's results):
// lr 0.2/256 per image, cosine schedule, 80 epochs. Writes outputs/<experiment-name>/byol_linear_eval_teacher/.
import base from './linear_eval_exp';

export default base.extend({
  basicLrPerImg: 0.2 / 256,
  scheduler: 'cos',
  milestones: [],
  maxEpoch: 80,
  outputPrefix: 'byol_',
});

// linear_eval_exp — linear evaluation, MoCo setting (spec §6): frozen teacher encoder from
// outputs/<experiment-name>/last_epoch_ckpt.safetensors, Linear+BN1d classifier, SGD μ 0.9 wd 0,
// lr 30/256 per image, multistep at epochs 60 and 80, 100 epochs, evaluated every 10 epochs.
// Writes outputs/<experiment-name>/linear_eval_teacher/.
import { linearEvalBase } from 'momentum2-teacher';

export default linearEvalBase.extend({});

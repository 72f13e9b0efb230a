// momentum2_teacher_exp — the base pre-training experiment (spec §6):
// ResNet-50 (heads 4096 → 256) on data/imagenet_train, τ_base 0.99, SGD (μ 0.9, wd 1e-4),
// lr 0.05/256 per image, warmcos with 10 warm-up epochs from 1e-6, 40 epochs, batch 256 (-b).
import { pretrainBase } from 'momentum2-teacher';

export default pretrainBase.extend({});

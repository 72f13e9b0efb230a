// Short name for the flagship run: 300 epochs on 8 V100s, batch 1024 (exp_8_v100/momentum2_teacher_300e_exp).
//   npx mt-train -f exps/momentum2_teacher_300e.ts -b 1024 -d 0-7 --experiment-name run1
export { default } from './arxiv/exp_8_v100/momentum2_teacher_300e_exp';

// Short name for the linear evaluation behind the results table (arxiv/linear_eval_exp_byol).
//   npx mt-eval -f exps/linear_eval_byol.ts --experiment-name run1
export { default } from './arxiv/linear_eval_exp_byol';

// Tiny experiment files for end-to-end runs (written into a temporary folder).
import * as path from 'path';
import { writeFile } from './dist';

export const TINY_MODEL = `model: { arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 64, outDim: 32 }`;

/** A pre-training experiment: resnet18 width 0.125 small stem, 32 px, batch 8, heads 64/32. */
export function tinyPretrain(dir: string, opts: { maxEpoch?: number; size?: number; data?: string } = {}): string {
  const data = opts.data ?? `train: { kind: 'synthetic', size: ${opts.size ?? 32}, numClasses: 4, imageSize: 36 }`;
  return writeFile(
    path.join(dir, 'tiny_pretrain.ts'),
    `import { pretrainBase } from 'momentum2-teacher';
export default pretrainBase.extend({
  batchSize: 8,
  maxEpoch: ${opts.maxEpoch ?? 2},
  warmupEpochs: 1,
  threads: 1,
  printInterval: 2,
  ${TINY_MODEL},
  data: { ${data}, imageSize: 32, workers: 1 },
});
`,
  );
}

/** A linear evaluation of it (BYOL setting, short). */
export function tinyEval(dir: string, opts: { data?: string } = {}): string {
  const data =
    opts.data ??
    `train: { kind: 'synthetic', size: 32, numClasses: 4, imageSize: 36 }, val: { kind: 'synthetic', size: 12, numClasses: 4, imageSize: 36 }`;
  return writeFile(
    path.join(dir, 'tiny_eval.ts'),
    `import base from '${path.join(__dirname, '..', '..', 'exps', 'arxiv', 'linear_eval_exp_byol').split(path.sep).join('/')}';
export default base.extend({
  batchSize: 8,
  maxEpoch: 2,
  evalInterval: 1,
  threads: 1,
  printInterval: 2,
  basicLrPerImg: 0.1 / 8,
  data: { ${data}, imageSize: 32, workers: 1, augmentation: { resizeSize: 36 } },
});
`,
  );
}

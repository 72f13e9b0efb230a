import * as fs from 'fs';
import * as path from 'path';
import { ExperimentError } from '../lib/errors';
import { deepMerge, linearEvalBase, pretrainBase, suggestKey, validateConfig } from '../lib/experiment';
import { ROOT, loadExperiments, requireDist, tmpDir, writeFile } from './helpers/dist';

describe('experiment DSL', () => {
  test('extend deep-merges and validates; the base stays untouched', () => {
    const e = pretrainBase.extend({ maxEpoch: 7, warmupEpochs: 1, model: { arch: 'resnet18', width: 0.125 }, data: { augmentation: { flip: { p: 0 } } } });
    expect(e.config.maxEpoch).toBe(7);
    expect(e.config.model).toEqual({ arch: 'resnet18', width: 0.125, smallStem: false, hiddenDim: 4096, outDim: 256 });
    expect(e.config.data.augmentation.flip.p).toBe(0);
    expect(e.config.data.augmentation.grayscale.p).toBe(0.2);
    expect(pretrainBase.config.maxEpoch).toBe(40);
    expect(pretrainBase.config.model.arch).toBe('resnet50');
    expect(Object.isFrozen(e.config.model)).toBe(true);
  });

  test('a dataset of another kind replaces the whole dataset object', () => {
    const e = pretrainBase.extend({ data: { train: { kind: 'mnist', split: 'train' } } });
    expect(e.config.data.train).toEqual({ kind: 'mnist', split: 'train' });
    expect(deepMerge({ a: [1, 2], b: { c: 1 } }, { a: [3], b: { d: 2 } })).toEqual({ a: [3], b: { c: 1, d: 2 } });
  });

  test('unknown keys fail with the key, a suggestion and this file', () => {
    let err: ExperimentError | undefined;
    try {
      pretrainBase.extend({ maxEpochs: 3 } as never);
    } catch (e) {
      err = e as ExperimentError;
    }
    expect(err).toBeInstanceOf(ExperimentError);
    expect(err!.message).toContain('maxEpochs: unknown key (did you mean \'maxEpoch\'?)');
    expect(err!.file).toBe(__filename);
    expect(err!.message).toContain(path.join('test', 'experiment.test.ts'));
  });

  test('wrong types fail with the key path', () => {
    expect(() => pretrainBase.extend({ batchSize: '256' } as never)).toThrow(/batchSize: expected number, received string/);
    expect(() => pretrainBase.extend({ optimizer: { name: 'adam' } } as never)).toThrow(/optimizer\.name: expected one of 'sgd', 'lars', got "adam"/);
    expect(() => pretrainBase.extend({ data: { augmentation: { blur: { p: [1, 2] } } } } as never)).toThrow(
      /data\.augmentation\.blur\.p\[1\]: number must be less than or equal to 1/,
    );
    expect(() => pretrainBase.extend({ data: { train: { kind: 'lmdb' } } } as never)).toThrow(
      /data\.train\.kind: expected one of 'imagefolder', 'mnist', 'idx', 'synthetic'/,
    );
    expect(() => pretrainBase.extend({ data: { train: { kind: 'synthetic', size: 10 } } } as never)).toThrow(
      /data\.train\.numClasses: required/,
    );
    expect(() => pretrainBase.extend({ batchSize: 0 })).toThrow(/batchSize: number must be greater than 0/);
    expect(() => pretrainBase.extend({ scheduler: 'poly' } as never)).toThrow(/scheduler: expected one of 'warmcos', 'cos', 'multistep', 'linear', 'step'/);
  });

  test('rules across keys', () => {
    expect(() => pretrainBase.extend({ maxEpoch: 5 })).toThrow(/warmupEpochs: must be less than maxEpoch \(5\)/);
    expect(() => linearEvalBase.extend({ maxEpoch: 70 })).toThrow(/milestones: milestone 80 is not before maxEpoch \(70\)/);
    expect(() => linearEvalBase.extend({ milestones: [5, 3] })).toThrow(/strictly increasing/);
    expect(() => pretrainBase.extend({ kind: 'linear_eval' } as never)).toThrow(/cannot change an experiment's kind/);
    expect(() => pretrainBase.extend({ name: 'a/b' })).toThrow(/name: must not contain path separators/);
  });

  test('validateConfig and suggestions', () => {
    expect(() => validateConfig('pretrain', { kind: 'pretrain' })).toThrow(/seed: required/);
    expect(suggestKey('lr', ['basicLrPerImg', 'seed'])).toBeUndefined();
    expect(suggestKey('batch_size', ['batchSize', 'seed'])).toBe('batchSize');
  });
});

// --- experiment files, loaded through tsx in a plain Node process ----------------------------------

const EXPS = path.join(ROOT, 'exps');
function listExps(dir = EXPS): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? listExps(path.join(dir, d.name)) : /\.(ts|js)$/.test(d.name) ? [path.join(dir, d.name)] : []));
}

// Spec §6's table: [batch, optimiser, basic_lr_per_img·256, wd, epochs].
const PRETRAIN_TABLE: Record<string, [number, 'sgd' | 'lars', number, number, number]> = {
  'arxiv/momentum2_teacher_exp.ts': [256, 'sgd', 0.05, 1e-4, 40],
  'arxiv/exp_8_v100/momentum2_teacher_100e_exp.ts': [1024, 'sgd', 0.05, 1e-4, 100],
  'arxiv/exp_8_v100/momentum2_teacher_200e_exp.ts': [1024, 'sgd', 0.05, 1e-4, 200],
  'arxiv/exp_8_v100/momentum2_teacher_300e_exp.ts': [1024, 'sgd', 0.05, 1e-4, 300],
  'arxiv/exp_8_2080ti/momentum2_teacher_100e_32batch_1mm_099_exp.ts': [256, 'sgd', 0.05, 1e-4, 100],
  'arxiv/exp_8_2080ti/momentum2_teacher_200e_32batch_1mm_099_exp.ts': [256, 'sgd', 0.05, 1e-4, 200],
  'arxiv/exp_8_2080ti/momentum2_teacher_300e_32batch_1mm_099_exp.ts': [256, 'sgd', 0.05, 1e-4, 300],
  'arxiv/exp_128_2080ti/momentum2_teacher_100e_4096batch_16mm_exp.ts': [4096, 'lars', 0.45, 1e-6, 100],
  'arxiv/exp_128_2080ti/momentum2_teacher_200e_4096batch_16mm_exp.ts': [4096, 'lars', 0.45, 1e-6, 200],
  'arxiv/exp_128_2080ti/momentum2_teacher_300e_4096batch_16mm_exp.ts': [4096, 'lars', 0.3, 1e-6, 300],
  'momentum2_teacher_300e.ts': [1024, 'sgd', 0.05, 1e-4, 300],
};
// [lr·256, scheduler, milestones, epochs, output prefix]
const EVAL_TABLE: Record<string, [number, string, number[], number, string]> = {
  'arxiv/linear_eval_exp.ts': [30, 'multistep', [60, 80], 100, ''],
  'arxiv/linear_eval_exp_byol.ts': [0.2, 'cos', [], 80, 'byol_'],
  'linear_eval_byol.ts': [0.2, 'cos', [], 80, 'byol_'],
};

describe('exps/ (spec §6)', () => {
  beforeAll(requireDist);
  const files = listExps();
  let results: Record<string, ReturnType<typeof loadExperiments>[number]> = {};
  beforeAll(() => {
    results = Object.fromEntries(loadExperiments(files).map((r) => [path.relative(EXPS, r.file).split(path.sep).join('/'), r]));
  });

  test('every file loads', () => {
    for (const [rel, r] of Object.entries(results)) {
      expect([rel, r.ok ? 'ok' : r.error?.message]).toEqual([rel, 'ok']);
    }
  });

  test('every reference experiment is present', () => {
    for (const rel of [...Object.keys(PRETRAIN_TABLE), ...Object.keys(EVAL_TABLE)]) expect(Object.keys(results)).toContain(rel);
  });

  test.each(Object.entries(PRETRAIN_TABLE))('%s matches the table', (rel, [batch, opt, lr256, wd, epochs]) => {
    const c = results[rel].config;
    expect(c.kind).toBe('pretrain');
    expect(c.name).toBe(path.basename(rel, '.ts'));
    expect(c.batchSize).toBe(batch);
    expect(c.optimizer.name).toBe(opt);
    expect(c.basicLrPerImg * 256).toBeCloseTo(lr256, 12);
    expect(c.optimizer.weightDecay).toBe(wd);
    expect(c.maxEpoch).toBe(epochs);
    // common to every pre-training experiment
    expect(c.tauBase).toBe(0.99);
    expect(c.warmupEpochs).toBe(10);
    expect(c.warmupLr).toBe(1e-6);
    expect(c.scheduler).toBe('warmcos');
    expect(c.optimizer.momentum).toBe(0.9);
    expect(c.data.workers).toBe(6);
    expect(c.printInterval).toBe(10);
    expect(c.evalInterval).toBe(10);
    expect(c.outputDir).toBe('outputs');
    expect(c.model).toEqual({ arch: 'resnet50', width: 1, smallStem: false, hiddenDim: 4096, outDim: 256 });
    expect(c.data.imageSize).toBe(224);
    expect(c.bnDoubleUnbias).toBe(true);
    if (opt === 'lars') expect(c.optimizer.eta).toBe(0.001);
  });

  test.each(Object.entries(EVAL_TABLE))('%s matches the table', (rel, [lr256, sched, milestones, epochs, prefix]) => {
    const c = results[rel].config;
    expect(c.kind).toBe('linear_eval');
    expect(c.basicLrPerImg * 256).toBeCloseTo(lr256, 12);
    expect(c.scheduler).toBe(sched);
    expect(c.milestones).toEqual(milestones);
    expect(c.maxEpoch).toBe(epochs);
    expect(c.outputPrefix).toBe(prefix);
    expect(c.optimizer).toEqual({ momentum: 0.9, weightDecay: 0 });
    expect(c.evalInterval).toBe(10);
    expect(c.encoderPrefix).toBe('teacher_encoder.');
    expect(c.checkpoint).toBe('last_epoch_ckpt.safetensors');
  });
});

describe('experiment files: failures name the file and the key', () => {
  beforeAll(requireDist);
  const dir = tmpDir();
  const f = (name: string, text: string) => writeFile(path.join(dir, name), text);
  const files = {
    typo: f('typo.ts', `import { pretrainBase } from 'momentum2-teacher';\nexport default pretrainBase.extend({ maxEpoch: 3, warmupEpochs: 1, batchsize: 8 } as any);\n`),
    type: f('type.ts', `import { pretrainBase } from 'momentum2-teacher';\nexport default pretrainBase.extend({ model: { width: 'half' } } as any);\n`),
    syntax: f('syntax.ts', `import { pretrainBase } from 'momentum2-teacher';\nexport default pretrainBase.extend({ maxEpoch: 3 \n`),
    noexport: f('noexport.ts', `export const x = 1;\n`),
    throws: f('throws.ts', `throw new Error('boom');\n`),
    child: f('child.ts', `import base from './typo';\nexport default base.extend({});\n`),
    plain: f('plain.js', `module.exports = { kind: 'pretrain', seed: 1 };\n`),
    good: f('good.ts', `import { pretrainBase } from 'momentum2-teacher';\nexport default pretrainBase.extend({ maxEpoch: 3, warmupEpochs: 1 });\n`),
    wrongext: f('exp.yaml', `{}`),
  };
  let r: Record<string, ReturnType<typeof loadExperiments>[number]> = {};
  beforeAll(() => {
    const names = Object.keys(files) as (keyof typeof files)[];
    const out = loadExperiments([...names.map((n) => files[n]), path.join(dir, 'missing.ts')], 'pretrain');
    r = Object.fromEntries([...names, 'missing'].map((n, i) => [n, out[i]]));
  });

  test('unknown key', () => {
    expect(r.typo.error?.name).toBe('ExperimentError');
    expect(r.typo.error?.message).toContain(`${files.typo}: invalid pretrain experiment`);
    expect(r.typo.error?.message).toContain(`batchsize: unknown key (did you mean 'batchSize'?)`);
  });
  test('wrong type', () => {
    expect(r.type.error?.message).toContain(`${files.type}: invalid pretrain experiment`);
    expect(r.type.error?.message).toContain('model.width: expected number, received string');
  });
  test('syntax error with line and column', () => {
    expect(r.syntax.error?.message).toMatch(new RegExp(`${files.syntax}:3:1: cannot compile the experiment file: Expected "}" but found end of file`));
  });
  test('no experiment exported', () => {
    expect(r.noexport.error?.message).toContain('does not export an experiment');
  });
  test('a throwing file', () => {
    expect(r.throws.error?.message).toBe(`${files.throws}: error while loading the experiment file: boom`);
  });
  test('an error in a base file names the base file', () => {
    expect(r.child.error?.message).toContain(`${files.typo}: invalid pretrain experiment`);
  });
  test('a plain object export is validated whole', () => {
    expect(r.plain.error?.message).toContain(`${files.plain}: invalid pretrain experiment`);
    expect(r.plain.error?.message).toContain('outputDir: required');
  });
  test('a good file gets its name from the file', () => {
    expect(r.good.ok).toBe(true);
    expect(r.good.config.name).toBe('good');
    expect(r.good.sources).toEqual([files.good]);
  });
  test('missing file and wrong extension', () => {
    expect(r.missing.error?.message).toBe(`experiment file not found: ${path.join(dir, 'missing.ts')}`);
    expect(r.wrongext.error?.message).toMatch(/must be a TypeScript or JavaScript module/);
  });
  test('kind mismatch', () => {
    const [e] = loadExperiments([path.join(EXPS, 'arxiv', 'linear_eval_exp.ts')], 'pretrain');
    expect(e.error?.message).toMatch(/is a linear_eval experiment; mt-train needs a pretrain experiment \(run it with mt-eval\)/);
  });
});

test('exps/ type-checks against the package sources (tsc -p exps)', () => {
  const { spawnSync } = require('child_process') as typeof import('child_process');
  const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'exps')], { encoding: 'utf8' });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});

// The programmatic API: `import { … } from 'momentum2-teacher'` (here: from lib/index).
import * as fs from 'fs';
import * as path from 'path';
import {
  EvalEvent,
  FILES,
  IterationEvent,
  LinearEvalRun,
  PretrainRun,
  linearEval,
  linearEvalBase,
  makeSchedule,
  pretrain,
  pretrainBase,
  readRunState,
} from '../lib';
import { addonBuilt, tmpDir } from './helpers/dist';

const maybe = addonBuilt() ? describe : describe.skip;

const tinyModel = { arch: 'resnet18', width: 0.125, smallStem: true } as const;
const exp = pretrainBase.extend({
  batchSize: 8,
  maxEpoch: 2,
  warmupEpochs: 1,
  threads: 1,
  model: { ...tinyModel, hiddenDim: 64, outDim: 32 },
  data: { train: { kind: 'synthetic', size: 24, numClasses: 3, imageSize: 32 }, imageSize: 32, workers: 1 },
});
const evalExp = linearEvalBase.extend({
  batchSize: 8,
  maxEpoch: 3,
  milestones: [2],
  evalInterval: 2,
  threads: 1,
  basicLrPerImg: 0.05 / 8,
  data: {
    train: { kind: 'synthetic', size: 24, numClasses: 3, imageSize: 32 },
    val: { kind: 'synthetic', size: 10, numClasses: 3, imageSize: 32 },
    imageSize: 32,
    workers: 1,
    augmentation: { resizeSize: 36 },
  },
});

maybe('API: pre-training then linear evaluation, with progress events', () => {
  const root = tmpDir('m2t-api-');

  test('pretrain() emits start, iteration, epoch, checkpoint and end events', async () => {
    const its: IterationEvent[] = [];
    const seen: string[] = [];
    const result = await pretrain({
      experiment: exp,
      name: 'api',
      outputDir: root,
      on: {
        start: (e) => {
          seen.push('start');
          expect(e).toMatchObject({ itersPerEpoch: 3, totalIterations: 6, startIteration: 0, datasetSize: 24 });
        },
        iteration: (e) => its.push(e),
        epoch: () => seen.push('epoch'),
        checkpoint: (c) => seen.push(`checkpoint:${c.reason}`),
        end: () => seen.push('end'),
      },
    });
    expect(seen).toEqual(['start', 'checkpoint:epoch', 'epoch', 'checkpoint:epoch', 'epoch', 'end']);
    expect(its.map((e) => e.iteration)).toEqual([1, 2, 3, 4, 5, 6]);
    // The schedule, applied in the reference's order: step k runs at lrAt(k-1).
    const s = makeSchedule({ scheduler: 'warmcos', lrBase: (0.05 / 256) * 8, itersPerEpoch: 3, totalEpochs: 2, warmupEpochs: 1 });
    expect(its.map((e) => e.lr)).toEqual([0, 1, 2, 3, 4, 5].map((k) => s.lrAt(k)));
    expect(its[0].lr).toBe(1e-6);
    expect(its.every((e) => Number.isFinite(e.loss) && e.tau >= 0.99 && e.alpha <= 1)).toBe(true);
    expect(result).toMatchObject({ iterations: 6, totalIterations: 6, epochsCompleted: 2, interrupted: false, outputDir: path.join(root, 'api') });
    expect(result.checkpoint).toBe(path.join(root, 'api', FILES.lastEpoch));
  });

  test('linearEval() evaluates and reports the best', async () => {
    const evals: EvalEvent[] = [];
    const r = await linearEval({ experiment: evalExp, name: 'api', outputDir: root, on: { eval: (e) => evals.push(e) } });
    expect(evals.map((e) => e.epoch)).toEqual([2, 3]);
    expect(evals.every((e) => e.images === 10 && e.top1 >= 0 && e.top1 <= 100 && e.top5 >= e.top1)).toBe(true);
    expect(r.best!.top1).toBe(Math.max(...evals.map((e) => e.top1)));
    expect(r.outputDir).toBe(path.join(root, 'api', 'linear_eval_teacher'));
    expect(fs.existsSync(path.join(r.outputDir, FILES.best))).toBe(true);
    expect(readRunState(path.join(r.outputDir, FILES.best)).extra).toMatchObject({ best: { epoch: r.best!.epoch } });
  });

  test('stop() from a handler interrupts with a checkpoint; resume continues', async () => {
    const run = new PretrainRun({ experiment: exp, name: 'stop', outputDir: root });
    run.on('iteration', (e: IterationEvent) => e.iteration === 2 && run.stop('enough'));
    const r = await run.run();
    expect(r).toMatchObject({ interrupted: true, iterations: 2 });
    expect(readRunState(path.join(root, 'stop', FILES.interrupted))).toMatchObject({ epoch: 0, batch: 2, iteration: 2, reason: 'interrupt' });
    const r2 = await pretrain({ experiment: exp, name: 'stop', outputDir: root, resume: true });
    expect(r2).toMatchObject({ interrupted: false, iterations: 6 });
  });

  test('linear evaluation resumes too', async () => {
    const a = await new LinearEvalRun({ experiment: evalExp, name: 'api', outputDir: root, stopAtIteration: 4 }).run();
    expect(a).toMatchObject({ interrupted: true, iterations: 4 });
    // No experiment given: the checkpoint's own.
    const b = await linearEval({ name: 'api', outputDir: root, resume: true });
    expect(b).toMatchObject({ interrupted: false, iterations: 9 });
  });
});

// mt-train / mt-eval as a user runs them: flags, help, failure messages, end-to-end runs,
// signal handling. Runs the compiled CLIs (dist/) in child processes.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FILES, readRunState } from '../lib/checkpoint';
import { addonBuilt, dataLayerBuilt, DIST, requireDist, ROOT, runCli, tmpDir, writeFile } from './helpers/dist';
import { makeImageFolder } from './helpers/images';
import { tinyEval, tinyPretrain } from './helpers/fixtures';

beforeAll(() => requireDist(['bin/mt-train.js', 'bin/mt-eval.js']));

const STACK = /^\s+at .+\(.+:\d+:\d+\)$|^\s+at .+:\d+:\d+$/m;

describe('--help', () => {
  test.each(['mt-train', 'mt-eval'] as const)('%s documents every flag', (tool) => {
    const r = runCli(tool, ['--help']);
    expect(r.status).toBe(0);
    for (const flag of ['-f, --exp_file', '-b, --batch-size', '-d, --devices', '-expn, --experiment-name', '--scheduler', '--dist-url', '--resume', '--data-root', '--output-dir', '--seed', '--verbose', '--dry-run']) {
      expect(r.stdout).toContain(flag);
    }
    if (tool === 'mt-eval') {
      expect(r.stdout).toContain('--val-root');
      expect(r.stdout).toContain('--pretrained');
    }
  });
});

describe('flags resolve into the experiment (--dry-run)', () => {
  test('reference flags and aliases', () => {
    const r = runCli('mt-train', ['-f', 'exps/arxiv/exp_8_v100/momentum2_teacher_100e_exp.ts', '-b', '512', '-expn', 'x', '--scheduler', 'cos', '--seed', '3', '--output-dir', '/tmp/o', '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const cfg = JSON.parse(r.stdout);
    expect(cfg).toMatchObject({ name: 'x', batchSize: 512, scheduler: 'cos', seed: 3, outputDir: '/tmp/o', maxEpoch: 100 });
    const r2 = runCli('mt-train', ['--exp-file', 'exps/arxiv/exp_8_v100/momentum2_teacher_100e_exp.ts', '--experiment-name', 'y', '--dry-run']);
    expect(JSON.parse(r2.stdout)).toMatchObject({ name: 'y', batchSize: 1024 });
    const r3 = runCli('mt-train', ['--dry-run']);
    expect(JSON.parse(r3.stdout)).toMatchObject({ name: 'momentum2_teacher_exp', batchSize: 256, maxEpoch: 40 });
  });
  test('mt-eval: -expn names the pre-training run', () => {
    const r = runCli('mt-eval', ['-f', 'exps/arxiv/linear_eval_exp_byol.ts', '-expn', 'run1', '-b', '64', '--dry-run']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ pretrainName: 'run1', batchSize: 64, outputPrefix: 'byol_', scheduler: 'cos' });
  });
});

describe('failure messages: one clear line, non-zero exit, no stack unless --verbose', () => {
  const dir = tmpDir('m2t-cli-fail-');
  const bad = writeFile(path.join(dir, 'bad.ts'), `import { pretrainBase } from 'momentum2-teacher';\nexport default pretrainBase.extend({ maxEpoch: 'ten' } as any);\n`);
  const cases: [string, 'mt-train' | 'mt-eval', string[], RegExp][] = [
    ['unknown flag', 'mt-train', ['--bogus'], /^mt-train: error: unknown option '--bogus'/],
    ['bad batch size', 'mt-train', ['-b', '0'], /--batch-size must be a positive integer, got '0'/],
    ['bad scheduler', 'mt-train', ['--scheduler', 'poly'], /argument 'poly' is invalid\. Allowed choices are warmcos, cos, multistep, linear, step/],
    ['missing experiment file', 'mt-train', ['-f', path.join(dir, 'nope.ts')], /^mt-train: error: experiment file not found: .*nope\.ts$/m],
    ['invalid experiment file', 'mt-train', ['-f', bad], /^mt-train: error: .*bad\.ts: invalid pretrain experiment\n\s+maxEpoch: expected number, received string/m],
    ['wrong kind', 'mt-eval', ['-f', path.join(ROOT, 'exps/arxiv/momentum2_teacher_exp.ts')], /is a pretrain experiment; mt-eval needs a linear_eval experiment \(run it with mt-train\)/],
    ['missing dataset', 'mt-train', ['--experiment-name', 'nodata'], /^mt-train: error: dataset not found: data\/imagenet_train does not exist/m],
    ['missing --data-root', 'mt-train', ['--data-root', path.join(dir, 'none')], /dataset not found: .*none does not exist/],
    ['several GPUs', 'mt-train', ['-d', '0-7'], /asks for 8 GPUs .* multi-GPU training is not implemented yet/],
    ['a GPU without CUDA', 'mt-train', ['-d', '0'], /asks for GPU 0, but this build of momentum2-teacher has no CUDA backend; use -d cpu/],
    ['bad devices', 'mt-train', ['-d', 'gpu0'], /invalid --devices 'gpu0'/],
    ['nothing to resume', 'mt-train', ['--resume', '-expn', 'never_ran', '--output-dir', dir], /--resume: no checkpoint to resume from in .*never_ran/],
    ['resume file missing', 'mt-train', ['--resume', path.join(dir, 'x.safetensors')], /checkpoint not found: .*x\.safetensors/],
    ['eval without a run name', 'mt-eval', [], /needs the pre-training run to evaluate: pass --experiment-name/],
    ['eval of a missing checkpoint', 'mt-eval', ['-expn', 'never_ran', '--output-dir', dir], /pre-training checkpoint not found: .*never_ran\/last_epoch_ckpt\.safetensors/],
    ['--val-root on mt-train', 'mt-train', ['--val-root', dir], /unknown option '--val-root'/],
  ];
  test.each(cases)('%s', (_name, tool, args, re) => {
    // In an empty folder: no data/imagenet_train, no outputs/.
    const r = runCli(tool, args, { cwd: dir });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stdout).toBe('');
  });
  test('--verbose adds the stack trace', () => {
    const r = runCli('mt-train', ['-f', path.join(dir, 'nope.ts'), '--verbose']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(STACK);
  });
  test('nothing is written for a failed start', () => {
    runCli('mt-train', ['--experiment-name', 'nodata'], { cwd: dir });
    expect(fs.readdirSync(dir).sort()).toEqual(['bad.ts']);
  });
});

const withEngine = addonBuilt() ? describe : describe.skip;

withEngine('end to end: mt-train then mt-eval on a tiny dataset', () => {
  const dir = tmpDir('m2t-e2e-');
  let train: ReturnType<typeof runCli>;
  beforeAll(() => {
    tinyPretrain(dir);
    tinyEval(dir);
    train = runCli('mt-train', ['-f', 'tiny_pretrain.ts', '-d', 'cpu', '-expn', 'tiny'], { cwd: dir });
  });

  test('mt-train runs and writes the reference layout', () => {
    expect(train.stderr).toBe('');
    expect(train.status).toBe(0);
    const out = path.join(dir, 'outputs', 'tiny');
    for (const f of [FILES.trainLog, FILES.metrics, FILES.config, FILES.lastEpoch]) expect(fs.existsSync(path.join(out, f))).toBe(true);
    const log = fs.readFileSync(path.join(out, FILES.trainLog), 'utf8');
    expect(log).toMatch(/\| INFO {4}\| \[1\/2\], remain:\dd\.\d\dh\.\d\dm, It:\[2\/4\], Data-Time:\d+\.\d{3}, LR:\d\.\d{4}, Loss:\d+\.\d\d/);
    expect(log).toMatch(/Train-Epoch: \[2\/2\], LR: 0\.0000, Con-Loss: \d+\.\d\d/);
    expect(log).toContain('resolved experiment:');
    expect(log.match(/Memory: planned [\d.]+ [KMG]iB at batch 8 \d+x\d+, allocator peak [\d.]+ [KMG]iB, workspaces /g)).toHaveLength(1);
    expect(train.stdout).toContain('Train-Epoch: [1/2]');
    const metrics = fs.readFileSync(path.join(out, FILES.metrics), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics).toHaveLength(8);
    expect(Object.keys(metrics[0]).sort()).toEqual(['alpha', 'batch', 'dataTime', 'epoch', 'imagesPerSec', 'iteration', 'loss', 'lr', 'stepTime', 'tau'].sort());
    expect(metrics[0].lr).toBe(1e-6);
    expect(metrics.map((m) => m.iteration)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, FILES.config), 'utf8'));
    const dry = runCli('mt-train', ['-f', 'tiny_pretrain.ts', '-expn', 'tiny', '--dry-run'], { cwd: dir });
    expect(cfg).toEqual(JSON.parse(dry.stdout));
    const st = readRunState(path.join(out, FILES.lastEpoch));
    expect(st).toMatchObject({ kind: 'pretrain', epoch: 2, batch: 0, iteration: 8, itersPerEpoch: 4, totalIterations: 8 });
  });

  test('--progress bar draws a bar with images/s and ETA', () => {
    const r = runCli('mt-train', ['-f', 'tiny_pretrain.ts', '-expn', 'bar', '--progress', 'bar'], { cwd: dir });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/train .* 100% \| it 8\/8 \| epoch 2\/2 \| \d+\.\d img\/s \| ETA \d+s \| loss \d\.\d{3}/);
  });

  test('the saved config.json reruns as an experiment file', () => {
    const r = runCli('mt-train', ['-f', path.join('outputs', 'tiny', 'config.json'), '--dry-run'], { cwd: dir });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).name).toBe('tiny');
  });

  test('mt-eval evaluates the teacher and keeps the best', () => {
    const r = runCli('mt-eval', ['-f', 'tiny_eval.ts', '-expn', 'tiny', '-d', 'cpu'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = path.join(dir, 'outputs', 'tiny', 'byol_linear_eval_teacher');
    for (const f of [FILES.evalLog, FILES.metrics, FILES.config, FILES.lastEpoch, FILES.best]) expect(fs.existsSync(path.join(out, f))).toBe(true);
    const log = fs.readFileSync(path.join(out, FILES.evalLog), 'utf8');
    expect(log).toMatch(/Eval-Epoch: \[1\/2\], Top-1: \d+\.\d\d, Top-5: \d+\.\d\d/);
    expect(log).toMatch(/Eval-Epoch: \[2\/2\], .*Best Top-1: \d+\.\d\d \(Top-5 \d+\.\d\d, epoch [12]\)/);
    expect(r.stdout).toMatch(/best top-1 \d+\.\d\d {2}top-5 \d+\.\d\d {2}\(epoch [12]\)/);
    const st = readRunState(path.join(out, FILES.best));
    expect(st.kind).toBe('linear_eval');
  });

  test('mt-eval with a mismatched encoder says so', () => {
    const f = writeFile(
      path.join(dir, 'wrong_arch.ts'),
      `import base from './tiny_eval';\nexport default base.extend({ model: { arch: 'resnet50', width: 0.125, smallStem: true } });\n`,
    );
    const r = runCli('mt-eval', ['-f', f, '-expn', 'tiny'], { cwd: dir });
    expect(r.status).toBe(1);
    // The checkpoint's run.model metadata names its encoder: the disagreement is caught before loading.
    expect(r.stderr).toMatch(/^mt-eval: error: outputs\/tiny\/last_epoch_ckpt\.safetensors holds a different encoder than the experiment's model: arch "resnet18" in its run\.model metadata, "resnet50" in the experiment/m);
    expect(r.stderr).not.toMatch(STACK);
  });
});

const withData = dataLayerBuilt() ? describe : describe.skip;

withData('end to end on a generated image folder (data layer)', () => {
  const dir = tmpDir('m2t-e2e-folder-');
  const env = { M2T_CACHE_DIR: path.join(dir, 'cache') };
  beforeAll(async () => {
    await makeImageFolder(path.join(dir, 'data'));
    tinyPretrain(dir, { data: `train: { kind: 'imagefolder', root: 'data/train' }` });
    tinyEval(dir, { data: `train: { kind: 'imagefolder', root: 'data/train' }, val: { kind: 'imagefolder', root: 'data/val' }` });
  });

  test('mt-train, then mt-eval with --data-root/--val-root, on PNG folders', () => {
    const t = runCli('mt-train', ['-f', 'tiny_pretrain.ts', '-expn', 'folder', '-d', 'cpu'], { cwd: dir, env });
    expect(t.stderr).toBe('');
    expect(t.status).toBe(0);
    expect(t.stdout).toMatch(/Training start: 32 images, 4 iterations per epoch, 8 in total, batch 8/);
    const e = runCli('mt-eval', ['-f', 'tiny_eval.ts', '-expn', 'folder', '--data-root', 'data/train', '--val-root', 'data/val'], { cwd: dir, env });
    expect(e.stderr).toBe('');
    expect(e.status).toBe(0);
    expect(e.stdout).toMatch(/Linear evaluation start: 32 training \/ 12 validation images, 4 classes/);
    expect(e.stdout).toMatch(/best top-1 \d+\.\d\d/);
    expect(fs.existsSync(path.join(dir, 'outputs', 'folder', 'byol_linear_eval_teacher', FILES.best))).toBe(true);
  });

  test('a folder without images fails with one clear message and writes nothing', () => {
    fs.mkdirSync(path.join(dir, 'empty', 'a'), { recursive: true });
    const r = runCli('mt-train', ['-f', 'tiny_pretrain.ts', '-expn', 'empty', '--data-root', 'empty'], { cwd: dir, env });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^mt-train: error: cannot open the training set \(image folder empty\): .*no JPEG or PNG images/m);
    expect(r.stderr).not.toMatch(STACK);
    expect(fs.existsSync(path.join(dir, 'outputs', 'empty'))).toBe(false);
  });
});

withEngine('signals', () => {
  test('SIGINT finishes the iteration, saves a loadable checkpoint, exits 130; --resume finishes the run', async () => {
    const dir = tmpDir('m2t-sigint-');
    tinyPretrain(dir, { maxEpoch: 10 });
    const child = spawn(process.execPath, [path.join(DIST, 'bin', 'mt-train.js'), '-f', 'tiny_pretrain.ts', '-expn', 'sig', '--progress', 'plain'], {
      cwd: dir,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        if (/It:\[2\/4\]/.test(stdout)) resolve();
      });
    });
    child.kill('SIGINT');
    const code = await exit;
    expect(stderr).toMatch(/SIGINT received: finishing the current iteration and saving a checkpoint/);
    // Mid-epoch (almost always) an interrupted_ckpt; if the stop fell on an epoch's last batch, the epoch's checkpoint.
    const m1 = /stopped at iteration \d+\/40; checkpoint (\S*(interrupted|last_epoch)_ckpt\.safetensors)/.exec(stderr);
    expect(m1).not.toBeNull();
    const ckpt = path.join(dir, m1![1]);
    expect(code).toBe(130);
    const out = path.join(dir, 'outputs', 'sig');
    const st = readRunState(ckpt);
    expect(st.iteration).toBeGreaterThanOrEqual(2);
    expect(st.iteration).toBeLessThan(40);
    // Loadable by the engine:
    const { Momentum2Teacher } = await import('../lib/engine');
    const m = new Momentum2Teacher({ arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 64, outDim: 32, totalIterations: 40, threads: 1 });
    await m.load(ckpt);
    expect(m.iteration).toBe(st.iteration);
    expect(fs.readFileSync(path.join(out, FILES.trainLog), 'utf8')).toMatch(/Interrupted \(SIGINT\) at epoch \d+, iteration \d+\/40: checkpoint saved to/);
    // And the run continues from there, with the command it suggested (the experiment comes from the checkpoint).
    expect(stderr).toContain('mt-train: continue with: npx mt-train --experiment-name sig --resume');
    const r = runCli('mt-train', ['--experiment-name', 'sig', '--resume'], { cwd: dir });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`resumed from outputs/sig/${m1![2]}_ckpt\\.safetensors: epoch \\d+, iteration ${st.iteration}/40`));
    expect(readRunState(path.join(out, FILES.lastEpoch)).iteration).toBe(40);
    expect(fs.existsSync(path.join(out, FILES.interrupted))).toBe(false);
  });
});

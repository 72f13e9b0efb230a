// Linear evaluation (docs/algorithm.md, "Linear evaluation"): the frozen teacher encoder of a pre-training checkpoint, a
// Linear+BN1d classifier trained with SGD on its features, top-1/top-5 every eval interval,
// the best kept, logs and checkpoints under outputs/<name>/<prefix>linear_eval_teacher/.
import * as fs from 'fs';
import * as path from 'path';
import { makeDirs } from './run-lock';
import { FILES, RunState, atomicCopy, atomicWrite, encodeRunState, newestCheckpoint, readRunState, readSafetensorsHeader } from './checkpoint';
import { DeviceSpec, checkDevices, describeDevices, engineDevice, parseDevices } from './devices';
import type { Checkpoint, EvalResult, ImageBatch, LinearProbeConfig } from './engine';
import { UserError, errorMessage } from './errors';
import { EncoderModelConfig, Experiment, LinearEvalConfig, displayPath, linearEvalBase } from './experiment';
import { ConsoleReporter, MetricsWriter, RunLogger, fixed, formatConfig } from './logging';
import { ExperimentInput, ExperimentOverrides, applyOverrides, resolveExperiment } from './overrides';
import { BadDataReport, DataProvider, EpochSource, LabeledBatch, WHOLE_DATASET, badDataLine, checkDataset, dataProvider } from './data/epoch-source';
import type { ProcessGroup } from './distributed/process-group';
import { LoopPosition, LoopRun, localBatchSize, rankCheckpointDir, rankResume, runRanks, runSchedule } from './run-loop';

/** What the loop needs from a probe (LinearProbe implements it). */
export interface ProbeModel {
  loadEncoder(sd: Checkpoint['tensors'], prefix?: string): void;
  trainStep(images: ImageBatch, labels: Int32Array, lr: number): Promise<{ loss: number }>;
  evaluate(images: ImageBatch, labels: Int32Array): Promise<EvalResult>;
  save(path: string, metadata: Record<string, string>): Promise<void>;
  load(path: string): Promise<Record<string, string>>;
}

export interface LinearEvalOptions extends ExperimentOverrides {
  /** A linear_eval experiment, a file path, or a plain configuration. Default: linear_eval_exp. */
  experiment?: ExperimentInput<'linear_eval'>;
  /** The pre-training checkpoint to evaluate (default: outputs/<name>/<experiment.checkpoint>). */
  pretrained?: string;
  devices?: string | DeviceSpec;
  distUrl?: string;
  /** Continue the linear evaluation from its newest checkpoint (true) or from this file. */
  resume?: boolean | string;
  console?: 'auto' | 'bar' | 'plain' | 'silent';
  signal?: AbortSignal;
  stopAtIteration?: number;
  data?: DataProvider;
  createProbe?: (config: LinearProbeConfig) => ProbeModel;
  readCheckpoint?: (file: string) => Promise<Checkpoint>;
  verbose?: boolean;
  /** Data-parallel: this process's group (mt-eval's workers pass it). Each rank trains the classifier on its
   *  shard with batch / world size images per step; classifier gradients are averaged; rank 0 alone evaluates
   *  and writes the logs, metrics and the run's checkpoints (the others keep theirs under ranks/rank<r>/). */
  processGroup?: ProcessGroup;
}

export interface EvalEvent {
  epoch: number;
  maxEpoch: number;
  top1: number;
  top5: number;
  loss: number;
  best: BestResult;
  images: number;
}

export interface BestResult {
  top1: number;
  top5: number;
  epoch: number;
}

export interface LinearEvalResult {
  /** outputs/<name>/<prefix>linear_eval_teacher. */
  outputDir: string;
  pretrained: string;
  checkpoint: string | undefined;
  iterations: number;
  epochsCompleted: number;
  interrupted: boolean;
  best: BestResult | undefined;
  last: { top1: number; top5: number; epoch: number } | undefined;
  config: LinearEvalConfig;
}

export interface LinearEvalEvents {
  start: { config: LinearEvalConfig; outputDir: string; pretrained: string; itersPerEpoch: number; totalIterations: number; startIteration: number; numClasses: number };
  iteration: { iteration: number; totalIterations: number; epoch: number; maxEpoch: number; batch: number; itersPerEpoch: number; lr: number; nextLr: number; loss: number; imagesPerSec: number; dataTime: number; stepTime: number; etaSeconds: number };
  eval: EvalEvent;
  epoch: { epoch: number; maxEpoch: number; iteration: number; lr: number; loss: number; checkpoint: string };
  checkpoint: { path: string; reason: 'epoch' | 'interrupt' | 'best' };
  log: string;
  end: LinearEvalResult;
}

export function evalOutputDir(cfg: LinearEvalConfig): string {
  return path.join(cfg.outputDir, cfg.pretrainName!, `${cfg.outputPrefix}linear_eval_teacher`);
}

export function resolveLinearEvalExperiment(o: LinearEvalOptions): Experiment<'linear_eval'> {
  const base = o.experiment === undefined && o.resume ? (experimentFromCheckpoint(o) ?? linearEvalBase) : resolveExperiment(o.experiment, 'linear_eval', linearEvalBase);
  return applyOverrides(base, o, true);
}

/** `--resume` without `-f`: the experiment of the linear evaluation being resumed (when the
 *  pre-training run has exactly one, MoCo or BYOL setting, to resume). */
function experimentFromCheckpoint(o: LinearEvalOptions): Experiment<'linear_eval'> | undefined {
  let file: string | undefined;
  if (typeof o.resume === 'string') file = o.resume;
  else if (o.name) {
    const found = ['', 'byol_']
      .map((prefix) => path.join(o.outputDir ?? linearEvalBase.config.outputDir, o.name!, `${prefix}linear_eval_teacher`))
      .filter((d) => fs.existsSync(d))
      .map((d) => {
        try {
          return newestCheckpoint(d, 'linear_eval');
        } catch {
          return undefined;
        }
      })
      .filter((x) => x !== undefined);
    if (found.length === 1) file = found[0]!.file;
  }
  if (!file || !fs.existsSync(file)) return undefined;
  const state = readRunState(file);
  if (state.kind !== 'linear_eval' || !state.config) return undefined;
  return resolveExperiment({ ...(state.config as LinearEvalConfig) }, 'linear_eval', linearEvalBase);
}

/** The pre-training checkpoint a linear evaluation reads. */
export function pretrainedCheckpointPath(cfg: LinearEvalConfig, explicit?: string): string {
  if (explicit) return explicit;
  if (path.isAbsolute(cfg.checkpoint) || cfg.checkpoint.includes('/') || cfg.checkpoint.includes(path.sep)) return cfg.checkpoint;
  return path.join(cfg.outputDir, cfg.pretrainName!, cfg.checkpoint);
}

export class LinearEvalRun extends LoopRun<LinearEvalResult> {
  constructor(readonly options: LinearEvalOptions = {}) {
    super(options.signal);
  }

  resolveConfig(): LinearEvalConfig {
    return resolveLinearEvalExperiment(this.options).config as LinearEvalConfig;
  }

  protected async runInner(): Promise<LinearEvalResult> {
    const o = this.options;
    const exp = resolveLinearEvalExperiment(o);
    const cfg = exp.config as LinearEvalConfig;
    const devices = checkDevices(typeof o.devices === 'string' ? parseDevices(o.devices) : (o.devices ?? { kind: 'cpu' }), 'linear evaluation');
    if (!cfg.pretrainName) {
      throw new UserError(
        'linear evaluation needs the pre-training run to evaluate: pass --experiment-name <name> ' +
          '(its checkpoint is outputs/<name>/last_epoch_ckpt.safetensors) or set pretrainName in the experiment',
      );
    }
    const pretrained = pretrainedCheckpointPath(cfg, o.pretrained);
    if (!fs.existsSync(pretrained)) {
      throw new UserError(
        `pre-training checkpoint not found: ${pretrained} ` +
          `(train it first with mt-train --experiment-name ${cfg.pretrainName}, or point --pretrained at a checkpoint)`,
      );
    }
    const header = readSafetensorsHeader(pretrained);
    const encoder = encoderConfig(cfg, header.metadata, pretrained);
    const outDir = evalOutputDir(cfg);
    const ranks = runRanks(o.processGroup);
    const { rank, worldSize: world, lead } = ranks;
    const localBatch = localBatchSize(cfg.batchSize, ranks);
    const ckptDir = rankCheckpointDir(outDir, ranks);
    if (lead && fs.existsSync(outDir)) this.lockFolder(outDir, 'mt-eval run');

    let resumeFile: string | undefined;
    let resumeState: RunState | undefined;
    if (o.resume) {
      if (typeof o.resume === 'string') {
        resumeFile = o.resume;
        resumeState = readRunState(resumeFile);
      } else {
        const found = fs.existsSync(outDir) ? newestCheckpoint(outDir, 'linear_eval') : undefined;
        if (!found) throw new UserError(`--resume: no linear-evaluation checkpoint to resume from in ${outDir}`);
        ({ file: resumeFile, state: resumeState } = found);
      }
      if (resumeState.kind !== 'linear_eval') throw new UserError(`${resumeFile} is a ${resumeState.kind} checkpoint, not a linear-evaluation one`);
      if (resumeState.batchSize !== cfg.batchSize || resumeState.seed !== cfg.seed) {
        throw new UserError(
          `cannot resume from ${displayPath(resumeFile)}: it was written with batch size ${resumeState.batchSize} and seed ${resumeState.seed}, ` +
            `this run has ${cfg.batchSize} and ${cfg.seed}`,
        );
      }
      ({ file: resumeFile, state: resumeState } = rankResume(resumeFile, resumeState, ranks, ckptDir));
    }

    checkDataset(cfg.data.train, 'train', '--data-root');
    checkDataset(cfg.data.val, 'val', '--val-root');
    // Everything that can fail on the user's input is checked before anything is written.
    let logger: RunLogger | undefined;
    let reporter: ConsoleReporter | undefined;
    let train: EpochSource<LabeledBatch> | undefined;
    let val: EpochSource<LabeledBatch> | undefined;
    let metrics: MetricsWriter | undefined;
    try {
      const provider = o.data ?? dataProvider();
      const common = { imageSize: cfg.data.imageSize, augmentation: cfg.data.augmentation, batchSize: localBatch, workers: cfg.data.workers, seed: cfg.seed };
      const onBadData = (r: BadDataReport) => logger?.warn(badDataLine(r));
      // Each rank trains on its shard; rank 0 alone evaluates, on the whole validation set.
      train = await provider.openEval({ ...common, rank, worldSize: world, dataset: cfg.data.train, split: 'train', state: resumeState?.data, onBadData });
      if (lead) val = await provider.openEval({ ...common, ...WHOLE_DATASET, dataset: cfg.data.val, split: 'val', onBadData });
      const ipe = train.batchesPerEpoch;
      if (ipe < 1) throw new UserError(`the training set has ${train.size} images, fewer than one batch of ${cfg.batchSize}; use a smaller -b`);
      const numClasses = cfg.numClasses === 'auto' ? train.numClasses : cfg.numClasses;
      if (!numClasses) throw new UserError('cannot tell the number of classes of the training set; set numClasses in the experiment');
      if (val && train.numClasses && val.numClasses && train.numClasses !== val.numClasses) {
        throw new UserError(`the training set has ${train.numClasses} classes but the validation set has ${val.numClasses}`);
      }
      const K = ipe * cfg.maxEpoch;
      const { schedule, lrBase } = runSchedule(cfg, ipe);
      if (resumeState && (resumeState.itersPerEpoch !== ipe || resumeState.totalIterations !== K)) {
        throw new UserError(`cannot resume from ${displayPath(resumeFile!)}: the dataset or the number of epochs changed`);
      }

      const probeConfig: LinearProbeConfig = {
        ...encoder,
        device: engineDevice(devices),
        threads: cfg.threads || undefined,
        seed: cfg.seed,
        numClasses,
        momentum: cfg.optimizer.momentum,
        weightDecay: cfg.optimizer.weightDecay,
      };
      let probe: ProbeModel;
      try {
        probe = o.createProbe ? o.createProbe(probeConfig) : await nativeProbe({ ...probeConfig, processGroup: ranks.group });
      } catch (e) {
        // e.g. the memory estimate of the encoder named by the checkpoint's run.model
        throw new UserError(`cannot build the encoder ${describeEncoder(encoder)} for ${pretrained}: ${errorMessage(e)}`);
      }
      const read = o.readCheckpoint ?? (async (f: string) => (await import('./engine')).readCheckpoint(f));
      let ckpt: Checkpoint;
      try {
        ckpt = await read(pretrained);
      } catch (e) {
        throw new UserError(`cannot read the pre-training checkpoint ${pretrained}: ${errorMessage(e)}`);
      }
      const hasEncoder = Object.keys(ckpt.tensors).some((k) => k.startsWith(cfg.encoderPrefix) && !k.startsWith(`${cfg.encoderPrefix}fc.`));
      if (!hasEncoder) {
        throw new UserError(`${pretrained} holds no '${cfg.encoderPrefix}*' encoder tensors (is it a pre-training checkpoint?)`);
      }
      try {
        probe.loadEncoder(ckpt.tensors, cfg.encoderPrefix);
      } catch (e) {
        throw new UserError(
          `${pretrained} does not match the encoder ${describeEncoder(encoder)}: ${errorMessage(e)}` +
            (cfg.model === 'pretrain' ? '' : ' (set model to the pre-training architecture, or to \'pretrain\')'),
        );
      }

      let epoch = 0;
      let batch = 0;
      let iteration = 0;
      let lr = schedule.lrAt(0);
      let best: BestResult | undefined;
      let last: LinearEvalResult['last'];
      if (resumeFile && resumeState) {
        try {
          await probe.load(resumeFile);
        } catch (e) {
          throw new UserError(`cannot resume from ${resumeFile}: ${errorMessage(e)}`);
        }
        ({ epoch, batch, iteration, lr } = resumeState);
        best = (resumeState.extra?.best as BestResult | undefined) ?? undefined;
        last = (resumeState.extra?.last as LinearEvalResult['last']) ?? undefined;
      }

      makeDirs(ckptDir);
      if (lead) this.lockFolder(outDir, 'mt-eval run');
      const { log, reporter: rep } = this.openLog(path.join(outDir, FILES.evalLog), 'linear eval', o.console, ranks);
      logger = log;
      reporter = rep;
      log.info(`linear evaluation ${cfg.name ?? ''} of ${displayPath(pretrained)} (${cfg.encoderPrefix}*)`);
      log.info(`devices: ${describeDevices(devices)}${world > 1 ? `, ${world} processes (${localBatch} images each per step)` : ''}`);
      log.info(`resolved experiment:\n${formatConfig(cfg)}`);
      if (lead) atomicWrite(path.join(outDir, FILES.config), JSON.stringify(cfg, null, 2) + '\n');
      if (o.verbose) log.info(`probe: ${JSON.stringify(probeConfig)}`);
      log.info(`loaded the frozen encoder ${describeEncoder(encoder)} from ${displayPath(pretrained)}`);
      if (resumeFile) log.info(`resumed from ${displayPath(resumeFile)}: epoch ${epoch + 1}, iteration ${iteration}/${K}`);
      const startIteration = iteration;
      metrics = lead ? new MetricsWriter(path.join(outDir, FILES.metrics), startIteration) : undefined;

      const state = (p: LoopPosition): RunState => ({
        kind: 'linear_eval',
        epoch: p.epoch,
        batch: p.batch,
        iteration: p.iteration,
        lr: p.lr,
        itersPerEpoch: ipe,
        totalIterations: K,
        batchSize: cfg.batchSize,
        seed: cfg.seed,
        data: train!.state?.(),
        config: cfg,
        extra: { best, last, pretrained, encoder, ...(world > 1 ? { worldSize: world, rank } : {}) },
        loss: p.loss,
        reason: p.reason,
      });

      this.emit('start', { config: cfg, outputDir: outDir, pretrained, itersPerEpoch: ipe, totalIterations: K, startIteration, numClasses });
      log.info(
        `Linear evaluation start: ${train.size} training${val ? ` / ${val.size} validation` : ''} images, ${numClasses} classes, ` +
          `${ipe} iterations per epoch, batch ${cfg.batchSize}, lr_base ${lrBase} (${cfg.scheduler})`,
      );

      const evaluate = async (e: number, it: number) => {
        let n = 0;
        let top1 = 0;
        let top5 = 0;
        let lossSum = 0;
        for await (const vb of val!.batches(0, 0)) {
          const m = vb.labels.length;
          let r: EvalResult;
          try {
            r = await probe.evaluate(vb.images, vb.labels);
          } finally {
            vb.release?.();
          }
          n += m;
          top1 += r.top1;
          top5 += r.top5;
          lossSum += r.loss * m;
        }
        const res = { top1: n ? (100 * top1) / n : 0, top5: n ? (100 * top5) / n : 0, loss: n ? lossSum / n : NaN };
        last = { top1: res.top1, top5: res.top5, epoch: e + 1 };
        const improved = !best || res.top1 > best.top1;
        if (improved) best = { top1: res.top1, top5: res.top5, epoch: e + 1 };
        log.info(
          `Eval-Epoch: [${e + 1}/${cfg.maxEpoch}], Top-1: ${fixed(res.top1, 2)}, Top-5: ${fixed(res.top5, 2)}, Loss: ${fixed(res.loss, 4)}, ` +
            `Best Top-1: ${fixed(best!.top1, 2)} (Top-5 ${fixed(best!.top5, 2)}, epoch ${best!.epoch})`,
        );
        metrics!.write({ kind: 'eval', iteration: it, epoch: e + 1, top1: res.top1, top5: res.top5, loss: res.loss, images: n, bestTop1: best!.top1 });
        this.emit('eval', { epoch: e + 1, maxEpoch: cfg.maxEpoch, top1: res.top1, top5: res.top5, loss: res.loss, best: best!, images: n } satisfies EvalEvent);
        return improved;
      };

      let improved = false;
      const loop = await this.loop({
        ranks,
        source: train,
        schedule,
        maxEpoch: cfg.maxEpoch,
        printInterval: cfg.printInterval,
        ckptDir,
        start: { epoch, batch, iteration, lr, loss: resumeState?.loss, checkpoint: resumeFile, resumed: !!resumeFile },
        stopAtIteration: o.stopAtIteration,
        log,
        reporter: rep,
        metrics,
        lossLabel: 'Loss',
        lossDigits: 4,
        step: async (tb: LabeledBatch, stepLr) => ({ loss: (await probe.trainStep(tb.images, tb.labels, stepLr)).loss, images: tb.labels.length }),
        check: (out, it, stepLr) => {
          if (!Number.isFinite(out.loss)) throw new UserError(`the loss is ${out.loss} at iteration ${it} (lr ${stepLr}); training diverged`);
        },
        save: (file, p) => probe.save(file, encodeRunState(state(p))),
        progressNote: () => (best ? `best top-1 ${fixed(best.top1, 2)}` : undefined),
        beforeEpochSave: async (e, it) => {
          const doEval = lead && ((e + 1) % cfg.evalInterval === 0 || e + 1 === cfg.maxEpoch);
          improved = doEval ? await evaluate(e, it) : false;
        },
        afterEpochSave: async (_e, file) => {
          if (!improved) return;
          atomicCopy(file, path.join(outDir, FILES.best));
          this.emit('checkpoint', { path: path.join(outDir, FILES.best), reason: 'best' });
        },
      });
      const { interrupted, lastCheckpoint, epochsCompleted } = loop;
      if (!interrupted) {
        log.info(
          `Linear evaluation done: best Top-1 ${best ? fixed(best.top1, 2) : '-'} (Top-5 ${best ? fixed(best.top5, 2) : '-'}, epoch ${best?.epoch ?? '-'}); ` +
            `results in ${displayPath(outDir)}`,
        );
      }
      const result: LinearEvalResult = { outputDir: outDir, pretrained, checkpoint: lastCheckpoint, iterations: loop.iteration, epochsCompleted, interrupted, best, last, config: cfg };
      this.emit('end', result);
      return result;
    } catch (e) {
      logger?.error(errorMessage(e));
      throw e;
    } finally {
      reporter?.stop();
      metrics?.close();
      await train?.close();
      await val?.close();
      logger?.close();
    }
  }
}

function describeEncoder(e: EncoderModelConfig): string {
  return `${e.arch} (width ${e.width}${e.smallStem ? ', small stem' : ''})`;
}

/** The encoder architecture: from the experiment, or from the checkpoint's metadata. */
function encoderConfig(cfg: LinearEvalConfig, meta: Record<string, string>, file: string): EncoderModelConfig {
  const m = meta['run.model'];
  let fromCheckpoint: EncoderModelConfig | undefined;
  if (m) {
    let parsed: Partial<EncoderModelConfig>;
    try {
      parsed = JSON.parse(m) as Partial<EncoderModelConfig>;
    } catch {
      throw new UserError(`${file}: metadata run.model is not valid JSON`);
    }
    if (!parsed || typeof parsed !== 'object' || typeof parsed.arch !== 'string') throw new UserError(`${file}: metadata run.model has no arch`);
    fromCheckpoint = { arch: parsed.arch, width: parsed.width ?? 1, smallStem: parsed.smallStem ?? false };
  }
  if (cfg.model !== 'pretrain') {
    const want: EncoderModelConfig = { arch: cfg.model.arch, width: cfg.model.width ?? 1, smallStem: cfg.model.smallStem ?? false };
    if (fromCheckpoint) {
      // A checkpoint that says it holds another encoder is an error, not a partial load.
      const keys = (['arch', 'width', 'smallStem'] as const).filter((k) => fromCheckpoint![k] !== want[k]);
      if (keys.length) {
        throw new UserError(
          `${file} holds a different encoder than the experiment's model: ` +
            keys.map((k) => `${k} ${JSON.stringify(fromCheckpoint![k])} in its run.model metadata, ${JSON.stringify(want[k])} in the experiment`).join('; ') +
            " (set model to 'pretrain' to use the checkpoint's)",
        );
      }
    }
    return { ...cfg.model };
  }
  if (!fromCheckpoint) {
    throw new UserError(
      `${file} does not say which encoder it holds (no run.model metadata); set model: { arch, width, smallStem } in the linear-evaluation experiment`,
    );
  }
  return fromCheckpoint;
}

async function nativeProbe(config: LinearProbeConfig): Promise<ProbeModel> {
  const { LinearProbe } = await import('./engine');
  return new LinearProbe(config);
}

/** Runs a linear evaluation to the end (or until stopped). */
export async function linearEval(
  options: LinearEvalOptions & { on?: { [E in keyof LinearEvalEvents]?: (ev: LinearEvalEvents[E]) => void } } = {},
): Promise<LinearEvalResult> {
  const run = new LinearEvalRun(options);
  for (const [name, fn] of Object.entries(options.on ?? {})) if (fn) run.on(name, fn as (...a: unknown[]) => void);
  return run.run();
}

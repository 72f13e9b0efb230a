// Linear evaluation (docs/algorithm.md, "Linear evaluation"): the frozen teacher encoder of a pre-training checkpoint, a
// Linear+BN1d classifier trained with SGD on its features, top-1/top-5 every eval interval,
// the best kept, logs and checkpoints under outputs/<name>/<prefix>linear_eval_teacher/.
import * as fs from 'fs';
import * as path from 'path';
import { FILES, atomicCopy, encodeRunState, newestCheckpoint, readRunState, readSafetensorsHeader } from './checkpoint';
import { DeviceSpec, describeDevices, engineDevice } from './devices';
import type { Checkpoint, EvalResult, ImageBatch, LinearProbeConfig } from './engine';
import { UserError, errorMessage } from './errors';
import { EncoderModelConfig, Experiment, LinearEvalConfig, displayPath, linearEvalBase } from './experiment';
import { fixed, formatConfig } from './logging';
import { ExperimentInput, ExperimentOverrides, applyOverrides, resolveExperiment } from './overrides';
import { BadDataReport, DataProvider, LabeledBatch, WHOLE_DATASET, badDataLine, checkDataset, dataProvider } from './data/epoch-source';
import type { ProcessGroup } from './distributed/process-group';
import { LoopResult, LoopRun, ResumePoint, RunPlace, RunResources, loopRunState, runDevices, runSchedule, whileRanksWork } from './run-loop';
import type { Schedule } from './schedules';

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
    const devices = runDevices(o.devices, 'linear evaluation');
    const { pretrained, encoder } = pretrainedEncoder(cfg, o.pretrained);
    const place = this.placeRun(evalOutputDir(cfg), cfg.batchSize, o.processGroup, 'mt-eval run');
    const resume = this.resumePoint(o.resume, place, 'linear_eval', {
      kindName: 'linear-evaluation',
      noneFound: `--resume: no linear-evaluation checkpoint to resume from in ${place.outDir}`,
      check: (state, file) => {
        if (state.batchSize !== cfg.batchSize || state.seed !== cfg.seed) {
          throw new UserError(
            `cannot resume from ${displayPath(file)}: it was written with batch size ${state.batchSize} and seed ${state.seed}, ` +
              `this run has ${cfg.batchSize} and ${cfg.seed}`,
          );
        }
      },
    });
    checkDataset(cfg.data.train, 'train', '--data-root');
    checkDataset(cfg.data.val, 'val', '--val-root');
    // Everything that can fail on the user's input is checked before anything is written.
    return this.withResources(async (res) => {
      // Each rank sets up at its own pace (rank 0 also opens the validation set), answering the others meanwhile.
      const run = await whileRanksWork(place.ranks.group, async () => {
        const data = await this.openData(cfg, place, resume, res);
        const probe = await this.buildProbe(cfg, devices, place, pretrained, encoder, data.numClasses);
        const start = await resumeProbe(probe.probe, resume, data.schedule);
        const outputs = this.startOutputs(cfg, devices, place, pretrained, encoder, resume, data, probe.probeConfig, start, res);
        return { cfg, place, resume, pretrained, encoder, ...data, ...probe, start, ...outputs };
      });
      const loop = await this.train(run);
      const { best, last } = run.start;
      if (!loop.interrupted) {
        run.log.info(
          `Linear evaluation done: best Top-1 ${best ? fixed(best.top1, 2) : '-'} (Top-5 ${best ? fixed(best.top5, 2) : '-'}, epoch ${best?.epoch ?? '-'}); ` +
            `results in ${displayPath(place.outDir)}`,
        );
      }
      const result: LinearEvalResult = {
        outputDir: place.outDir, pretrained, checkpoint: loop.lastCheckpoint, iterations: loop.iteration,
        epochsCompleted: loop.epochsCompleted, interrupted: loop.interrupted, best, last, config: cfg,
      };
      this.emit('end', result);
      return result;
    });
  }

  /** This rank's shard of the training set, rank 0's whole validation set, the classes and the schedule. */
  private async openData(cfg: LinearEvalConfig, place: RunPlace, resume: ResumePoint | undefined, res: RunResources) {
    const provider = this.options.data ?? dataProvider();
    const { rank, worldSize, lead } = place.ranks;
    const common = { imageSize: cfg.data.imageSize, augmentation: cfg.data.augmentation, batchSize: place.localBatch, workers: cfg.data.workers, seed: cfg.seed };
    const onBadData = (r: BadDataReport) => res.log?.warn(badDataLine(r));
    // Each rank trains on its shard; rank 0 alone evaluates, on the whole validation set.
    const train = await provider.openEval({ ...common, rank, worldSize, dataset: cfg.data.train, split: 'train', state: resume?.state.data, onBadData });
    res.sources.push(train);
    const val = lead ? await provider.openEval({ ...common, ...WHOLE_DATASET, dataset: cfg.data.val, split: 'val', onBadData }) : undefined;
    if (val) res.sources.push(val);
    const ipe = train.batchesPerEpoch;
    if (ipe < 1) throw new UserError(`the training set has ${train.size} images, fewer than one batch of ${cfg.batchSize}; use a smaller -b`);
    const numClasses = cfg.numClasses === 'auto' ? train.numClasses : cfg.numClasses;
    if (!numClasses) throw new UserError('cannot tell the number of classes of the training set; set numClasses in the experiment');
    if (val && train.numClasses && val.numClasses && train.numClasses !== val.numClasses) {
      throw new UserError(`the training set has ${train.numClasses} classes but the validation set has ${val.numClasses}`);
    }
    const K = ipe * cfg.maxEpoch;
    const { schedule, lrBase } = runSchedule(cfg, ipe);
    if (resume && (resume.state.itersPerEpoch !== ipe || resume.state.totalIterations !== K)) {
      throw new UserError(`cannot resume from ${displayPath(resume.file)}: the dataset or the number of epochs changed`);
    }
    return { train, val, numClasses, itersPerEpoch: ipe, totalIterations: K, schedule, lrBase };
  }

  /** The probe, with the frozen encoder of the pre-training checkpoint loaded. */
  private async buildProbe(cfg: LinearEvalConfig, devices: DeviceSpec, place: RunPlace, pretrained: string, encoder: EncoderModelConfig, numClasses: number) {
    const o = this.options;
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
      probe = o.createProbe ? o.createProbe(probeConfig) : await nativeProbe({ ...probeConfig, processGroup: place.ranks.group });
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
    return { probe, probeConfig };
  }

  /** The outputs, the start lines and the 'start' event. */
  private startOutputs(
    cfg: LinearEvalConfig, devices: DeviceSpec, place: RunPlace, pretrained: string, encoder: EncoderModelConfig, resume: ResumePoint | undefined,
    data: Awaited<ReturnType<LinearEvalRun['openData']>>, probeConfig: LinearProbeConfig, start: ProbeStart, res: RunResources,
  ) {
    const o = this.options;
    const { worldSize: world } = place.ranks;
    const K = data.totalIterations;
    const outputs = this.openOutputs(place, res, { logFile: FILES.evalLog, label: 'linear eval', console: o.console, config: cfg, startIteration: start.iteration });
    const { log } = outputs;
    log.info(`linear evaluation ${cfg.name ?? ''} of ${displayPath(pretrained)} (${cfg.encoderPrefix}*)`);
    log.info(`devices: ${describeDevices(devices)}${world > 1 ? `, ${world} processes (${place.localBatch} images each per step)` : ''}`);
    log.info(`resolved experiment:\n${formatConfig(cfg)}`);
    if (o.verbose) log.info(`probe: ${JSON.stringify(probeConfig)}`);
    log.info(`loaded the frozen encoder ${describeEncoder(encoder)} from ${displayPath(pretrained)}`);
    if (resume) log.info(`resumed from ${displayPath(resume.file)}: epoch ${start.epoch + 1}, iteration ${start.iteration}/${K}`);
    const { train, val, numClasses } = data;
    this.emit('start', { config: cfg, outputDir: place.outDir, pretrained, itersPerEpoch: data.itersPerEpoch, totalIterations: K, startIteration: start.iteration, numClasses });
    log.info(
      `Linear evaluation start: ${train.size} training${val ? ` / ${val.size} validation` : ''} images, ${numClasses} classes, ` +
        `${data.itersPerEpoch} iterations per epoch, batch ${cfg.batchSize}, lr_base ${data.lrBase} (${cfg.scheduler})`,
    );
    return outputs;
  }

  /** The loop: a probe step per batch; rank 0 evaluates every eval interval and keeps the best checkpoint.
   *  The best and last results are kept in `run.start` (what a resumed run carries on). */
  private train(run: LinearEvalSetUp): Promise<LoopResult> {
    const o = this.options;
    const { cfg, place, resume, probe, log, metrics, start } = run;
    const { lead, worldSize: world, rank } = place.ranks;
    const evaluate = async (e: number, it: number) => {
      let n = 0;
      let top1 = 0;
      let top5 = 0;
      let lossSum = 0;
      for await (const vb of run.val!.batches(0, 0)) {
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
      start.last = { top1: res.top1, top5: res.top5, epoch: e + 1 };
      const improved = !start.best || res.top1 > start.best.top1;
      if (improved) start.best = { top1: res.top1, top5: res.top5, epoch: e + 1 };
      const best = start.best!;
      log.info(
        `Eval-Epoch: [${e + 1}/${cfg.maxEpoch}], Top-1: ${fixed(res.top1, 2)}, Top-5: ${fixed(res.top5, 2)}, Loss: ${fixed(res.loss, 4)}, ` +
          `Best Top-1: ${fixed(best.top1, 2)} (Top-5 ${fixed(best.top5, 2)}, epoch ${best.epoch})`,
      );
      metrics!.write({ kind: 'eval', iteration: it, epoch: e + 1, top1: res.top1, top5: res.top5, loss: res.loss, images: n, bestTop1: best.top1 });
      this.emit('eval', { epoch: e + 1, maxEpoch: cfg.maxEpoch, top1: res.top1, top5: res.top5, loss: res.loss, best, images: n } satisfies EvalEvent);
      return improved;
    };

    let improved = false;
    return this.loop({
      ranks: place.ranks,
      source: run.train,
      schedule: run.schedule,
      maxEpoch: cfg.maxEpoch,
      printInterval: cfg.printInterval,
      ckptDir: place.ckptDir,
      start: { epoch: start.epoch, batch: start.batch, iteration: start.iteration, lr: start.lr, loss: resume?.state.loss, checkpoint: resume?.file, resumed: !!resume },
      stopAtIteration: o.stopAtIteration,
      log,
      reporter: run.reporter,
      metrics,
      lossLabel: 'Loss',
      lossDigits: 4,
      step: async (tb: LabeledBatch, stepLr) => ({ loss: (await probe.trainStep(tb.images, tb.labels, stepLr)).loss, images: tb.labels.length }),
      check: (out, it, stepLr) => {
        if (!Number.isFinite(out.loss)) throw new UserError(`the loss is ${out.loss} at iteration ${it} (lr ${stepLr}); training diverged`);
      },
      save: (file, p) => probe.save(file, encodeRunState(loopRunState('linear_eval', p, {
        itersPerEpoch: run.itersPerEpoch, totalIterations: run.totalIterations, config: cfg, data: run.train.state?.(),
      }, { best: start.best, last: start.last, pretrained: run.pretrained, encoder: run.encoder, ...(world > 1 ? { worldSize: world, rank } : {}) }))),
      progressNote: () => (start.best ? `best top-1 ${fixed(start.best.top1, 2)}` : undefined),
      beforeEpochSave: async (e, it) => {
        const doEval = lead && ((e + 1) % cfg.evalInterval === 0 || e + 1 === cfg.maxEpoch);
        improved = doEval ? await evaluate(e, it) : false;
      },
      afterEpochSave: async (_e, file) => {
        if (!improved) return;
        atomicCopy(file, path.join(place.outDir, FILES.best));
        this.emit('checkpoint', { path: path.join(place.outDir, FILES.best), reason: 'best' });
      },
    });
  }
}

/** Where a linear evaluation starts: the loop position, and the best and last results so far. */
interface ProbeStart {
  epoch: number;
  batch: number;
  iteration: number;
  lr: number;
  best: BestResult | undefined;
  last: LinearEvalResult['last'];
}

/** Everything the loop of a linear evaluation uses, set up once. */
type LinearEvalSetUp = Awaited<ReturnType<LinearEvalRun['openData']>> & Awaited<ReturnType<LinearEvalRun['buildProbe']>> &
  ReturnType<LinearEvalRun['startOutputs']> & {
    cfg: LinearEvalConfig;
    place: RunPlace;
    resume: ResumePoint | undefined;
    pretrained: string;
    encoder: EncoderModelConfig;
    start: ProbeStart;
  };

/** The probe at the checkpoint --resume names (its classifier, and the results so far), or at the start. */
async function resumeProbe(probe: ProbeModel, resume: ResumePoint | undefined, schedule: Schedule): Promise<ProbeStart> {
  if (!resume) return { epoch: 0, batch: 0, iteration: 0, lr: schedule.lrAt(0), best: undefined, last: undefined };
  try {
    await probe.load(resume.file);
  } catch (e) {
    throw new UserError(`cannot resume from ${resume.file}: ${errorMessage(e)}`);
  }
  const { epoch, batch, iteration, lr, extra } = resume.state;
  return { epoch, batch, iteration, lr, best: (extra?.best as BestResult | undefined) ?? undefined, last: (extra?.last as LinearEvalResult['last']) ?? undefined };
}

/** The pre-training checkpoint to evaluate (which must exist) and the encoder it holds. */
function pretrainedEncoder(cfg: LinearEvalConfig, explicit: string | undefined): { pretrained: string; encoder: EncoderModelConfig } {
  if (!cfg.pretrainName) {
    throw new UserError(
      'linear evaluation needs the pre-training run to evaluate: pass --experiment-name <name> ' +
        '(its checkpoint is outputs/<name>/last_epoch_ckpt.safetensors) or set pretrainName in the experiment',
    );
  }
  const pretrained = pretrainedCheckpointPath(cfg, explicit);
  if (!fs.existsSync(pretrained)) {
    throw new UserError(
      `pre-training checkpoint not found: ${pretrained} ` +
        `(train it first with mt-train --experiment-name ${cfg.pretrainName}, or point --pretrained at a checkpoint)`,
    );
  }
  const header = readSafetensorsHeader(pretrained);
  return { pretrained, encoder: encoderConfig(cfg, header.metadata, pretrained) };
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

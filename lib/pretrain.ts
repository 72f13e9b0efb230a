// The pre-training run loop (spec §3, §5, §9): epochs of two-view batches, one native step per
// iteration, per-iteration learning rate, logs, metrics, progress, checkpoints, exact resume.
import * as fs from 'fs';
import * as path from 'path';
import { FILES, RunState, atomicWrite, encodeRunState, newestCheckpoint, readRunState } from './checkpoint';
import { DeviceSpec, describeDevices, engineDevice } from './devices';
import type { M2TConfig, StepResult, ImageBatch } from './engine';
import { UserError, errorMessage } from './errors';
import { DatasetConfig, Experiment, PretrainConfig, displayPath, pretrainBase } from './experiment';
import { fixed, formatConfig } from './logging';
import { ExperimentInput, ExperimentOverrides, applyOverrides, resolveExperiment } from './overrides';
import { DataProvider, PretrainBatch, badDataLine, checkDataset, dataProvider } from './data/epoch-source';
import { EvaluationResult, evaluateFeatures, formatEvaluation } from './feature-eval';
import type { ProcessGroup } from './distributed/process-group';
import { KnnMonitor, type MonitorResult } from './monitor';
import { reportAtEnd } from './report';
import { memoryLine } from './memory';
import { LoopResult, LoopRun, ResumePoint, RunPlace, RunResources, loopRunState, round, runDevices, runSchedule, whileRanksWork } from './run-loop';
import type { Schedule } from './schedules';

/** What the loop needs from a model (Momentum2Teacher implements it). */
export interface PretrainModel {
  step(view1: ImageBatch, view2: ImageBatch, lr: number): Promise<StepResult>;
  readonly iteration: number;
  save(path: string, metadata: Record<string, string>): Promise<void>;
  load(path: string): Promise<Record<string, string>>;
}

export interface PretrainOptions extends ExperimentOverrides {
  /** An experiment object, a file path, or a plain configuration. Default: the base experiment. */
  experiment?: ExperimentInput<'pretrain'>;
  /** -d: 'cpu' (default), or GPU ids. */
  devices?: string | DeviceSpec;
  /** --dist-url: rendezvous address for multi-process runs (unused by single-process runs). */
  distUrl?: string;
  /** Continue from the newest checkpoint in the output folder (true) or from this file. */
  resume?: boolean | string;
  /** Console output: progress bar on a terminal ('auto'), 'bar', 'plain' lines, or none ('silent', the default). */
  console?: 'auto' | 'bar' | 'plain' | 'silent';
  /** Stops the run gracefully: the current iteration finishes, a checkpoint is written. */
  signal?: AbortSignal;
  /** Stop (as if interrupted) once this many iterations are done in total. */
  stopAtIteration?: number;
  /** Replace the data backend. */
  data?: DataProvider;
  /** Replace the model (tests); default: the native Momentum2Teacher. */
  createModel?: (config: M2TConfig) => PretrainModel;
  /** Log the model configuration and more. */
  verbose?: boolean;
  /** Data-parallel: this process's group (mt-train's workers pass it). Each rank trains on its shard with
   *  batch / world size images per step; gradients are averaged; rank 0 alone writes the logs, metrics and
   *  the run's checkpoints (the others keep their own BN statistics under ranks/rank<r>/ for exact resume). */
  processGroup?: ProcessGroup;
}

export interface IterationEvent {
  iteration: number;
  totalIterations: number;
  epoch: number;
  maxEpoch: number;
  batch: number;
  itersPerEpoch: number;
  /** Learning rate this step ran at. */
  lr: number;
  /** Learning rate of the next step. */
  nextLr: number;
  loss: number;
  tau: number;
  alpha: number;
  imagesPerSec: number;
  dataTime: number;
  stepTime: number;
  etaSeconds: number;
}

export interface EpochEvent {
  epoch: number;
  maxEpoch: number;
  iteration: number;
  lr: number;
  loss: number;
  checkpoint: string;
}

export interface PretrainResult {
  /** outputs/<name>. */
  outputDir: string;
  /** The last checkpoint written. */
  checkpoint: string | undefined;
  iterations: number;
  totalIterations: number;
  epochsCompleted: number;
  interrupted: boolean;
  lastLoss: number | undefined;
  config: PretrainConfig;
  /** Scores on frozen features, when the experiment has an `evaluation` block and the run completed. */
  evaluation?: EvaluationResult;
}

export interface StartEvent {
  config: PretrainConfig;
  outputDir: string;
  itersPerEpoch: number;
  totalIterations: number;
  startIteration: number;
  resumedFrom?: string;
  datasetSize: number;
}

/** After a kNN monitor measurement (experiment key `monitor`). */
export interface MonitorEvent extends MonitorResult {
  epoch: number;
  iteration: number;
}

/** Events: 'start' (StartEvent), 'iteration' (IterationEvent), 'epoch' (EpochEvent), 'monitor' (MonitorEvent),
 *  'checkpoint' ({ path, reason }), 'log' (line: string), 'evaluation' (EvaluationResult),
 *  'end' (PretrainResult). */
export class PretrainRun extends LoopRun<PretrainResult> {
  constructor(readonly options: PretrainOptions = {}) {
    super(options.signal);
  }

  /** The resolved experiment (with overrides), without running anything. */
  resolveConfig(): PretrainConfig {
    return resolvePretrainExperiment(this.options).config as PretrainConfig;
  }

  protected async runInner(): Promise<PretrainResult> {
    const o = this.options;
    const exp = resolvePretrainExperiment(o);
    const cfg = exp.config as PretrainConfig;
    const devices = runDevices(o.devices, 'training');
    const place = this.placeRun(path.join(cfg.outputDir, cfg.name!), cfg.batchSize, o.processGroup, 'mt-train run');
    const resume = this.resumePoint(o.resume, place, 'pretrain', {
      kindName: 'pre-training',
      noneFound:
        `--resume: no checkpoint to resume from in ${place.outDir} (expected ${FILES.lastEpoch} or ${FILES.interrupted}); ` +
        `check --experiment-name and --output-dir, or start without --resume`,
      check: (state, file) => checkResumable(state, cfg, file),
    });
    checkDataset(cfg.data.train, 'train', '--data-root');
    // Everything that can fail on the user's input is checked before anything is written.
    return this.withResources(async (res) => {
      // Each rank sets up at its own pace (rank 0 also prepares the kNN monitor), answering the others meanwhile.
      const run = await whileRanksWork(place.ranks.group, async () => {
        const data = await this.openData(cfg, place, resume, res);
        const model = await this.buildModel(cfg, devices, place, data.totalIterations);
        const start = await resumeModel(model.model, resume, data.schedule);
        return { cfg, place, resume, ...data, ...model, start, ...this.startOutputs(exp, devices, place, resume, data, model, start, res) };
      });
      const loop = await this.train(run);
      const evaluation = await this.finish(run, loop);
      const result: PretrainResult = {
        outputDir: place.outDir,
        checkpoint: loop.lastCheckpoint,
        iterations: run.model.iteration,
        totalIterations: run.totalIterations,
        epochsCompleted: loop.epochsCompleted,
        interrupted: loop.interrupted,
        lastLoss: loop.lastLoss,
        config: cfg,
        evaluation,
      };
      this.emit('end', result);
      return result;
    });
  }

  /** The training data (this rank's shard), its schedule, and rank 0's kNN monitor. */
  private async openData(cfg: PretrainConfig, place: RunPlace, resume: ResumePoint | undefined, res: RunResources) {
    const provider = this.options.data ?? dataProvider();
    const { rank, worldSize, lead } = place.ranks;
    const monitor = lead ? KnnMonitor.create(cfg, provider) : undefined; // rank 0 measures, as it logs
    const source = await provider.openPretrain({
      dataset: cfg.data.train,
      augmentation: cfg.data.augmentation,
      imageSize: cfg.data.imageSize,
      batchSize: place.localBatch,
      workers: cfg.data.workers,
      seed: cfg.seed,
      rank,
      worldSize,
      state: resume?.state.data,
      onBadData: (r) => res.log?.warn(badDataLine(r)),
    });
    res.sources.push(source);
    const ipe = source.batchesPerEpoch;
    if (ipe < 1) {
      throw new UserError(
        `the training set has ${source.size} images, fewer than one batch of ${cfg.batchSize}; use a smaller -b or more data`,
      );
    }
    const K = ipe * cfg.maxEpoch;
    const { schedule, lrBase } = runSchedule(cfg, ipe);
    if (resume && (resume.state.itersPerEpoch !== ipe || resume.state.totalIterations !== K)) {
      throw new UserError(
        `cannot resume from ${resume.file}: it was written with ${resume.state.itersPerEpoch} iterations per epoch ` +
          `(${resume.state.totalIterations} in total), this run has ${ipe} (${K}); the dataset or batch size changed`,
      );
    }
    return { provider, monitor, source, itersPerEpoch: ipe, totalIterations: K, schedule, lrBase };
  }

  private async buildModel(cfg: PretrainConfig, devices: DeviceSpec, place: RunPlace, totalIterations: number) {
    const modelConfig: M2TConfig = {
      device: engineDevice(devices),
      arch: cfg.model.arch,
      width: cfg.model.width,
      smallStem: cfg.model.smallStem,
      threads: cfg.threads || undefined,
      seed: cfg.seed,
      hiddenDim: cfg.model.hiddenDim,
      outDim: cfg.model.outDim,
      totalIterations,
      tauBase: cfg.tauBase,
      optimizer: { ...cfg.optimizer },
      bnDoubleUnbias: cfg.bnDoubleUnbias,
      precision: cfg.precision,
    };
    const o = this.options;
    const model = o.createModel ? o.createModel(modelConfig) : await nativeModel({ ...modelConfig, processGroup: place.ranks.group });
    return { model, modelConfig };
  }

  /** The outputs, the start lines and the 'start' event. */
  private startOutputs(
    exp: Experiment<'pretrain'>, devices: DeviceSpec, place: RunPlace, resume: ResumePoint | undefined,
    data: Awaited<ReturnType<PretrainRun['openData']>>, m: Awaited<ReturnType<PretrainRun['buildModel']>>,
    start: Awaited<ReturnType<typeof resumeModel>>, res: RunResources,
  ) {
    const o = this.options;
    const cfg = exp.config as PretrainConfig;
    const { outDir } = place;
    const { worldSize: world, lead } = place.ranks;
    const prev = lead && !resume && fs.existsSync(outDir) ? newestCheckpointQuiet(outDir) : undefined;
    const outputs = this.openOutputs(place, res, { logFile: FILES.trainLog, label: 'train', console: o.console, config: cfg, startIteration: m.model.iteration });
    const { log } = outputs;
    if (prev) {
      log.warn(
        `${displayPath(outDir)} already holds a checkpoint at iteration ${prev.state.iteration}; starting over ` +
          `(it will be overwritten at the end of the first epoch; use --resume to continue it instead)`,
      );
    }
    log.info(`${exp.sources.length ? `experiment ${displayPath(exp.sources[exp.sources.length - 1])}` : 'experiment'}: ${cfg.name}`);
    log.info(`devices: ${describeDevices(devices)}${world > 1 ? `, ${world} processes (${place.localBatch} images each per step)` : ''}` +
      `${o.distUrl ? `, dist-url ${o.distUrl}${world > 1 ? '' : ' (unused: single process)'}` : ''}`);
    log.info(`resolved experiment:\n${formatConfig(cfg)}`);
    if (o.verbose) log.info(`model: ${JSON.stringify(m.modelConfig)}`);
    const K = data.totalIterations;
    if (resume) log.info(`resumed from ${displayPath(resume.file)}: epoch ${start.epoch + 1}, iteration ${m.model.iteration}/${K}, lr ${start.lr}`);
    this.emit('start', {
      config: cfg,
      outputDir: outDir,
      itersPerEpoch: data.itersPerEpoch,
      totalIterations: K,
      startIteration: m.model.iteration,
      resumedFrom: resume?.file,
      datasetSize: data.source.size,
    } satisfies StartEvent);
    log.info(
      `Training start: ${data.source.size} images, ${data.itersPerEpoch} iterations per epoch, ${K} in total, batch ${cfg.batchSize}, ` +
        `lr_base ${data.lrBase} (${cfg.scheduler})`,
    );
    return outputs;
  }

  /** The loop: a native step per batch, rank 0's kNN monitor after an epoch. */
  private train(run: PretrainSetUp): Promise<LoopResult> {
    const o = this.options;
    const { cfg, place, resume, model, log, metrics, monitor } = run;
    const startIteration = run.start.iteration;
    let knnNote = ''; // the last kNN monitor reading, on the progress line
    return this.loop({
      ranks: place.ranks,
      source: run.source,
      schedule: run.schedule,
      maxEpoch: cfg.maxEpoch,
      printInterval: cfg.printInterval,
      ckptDir: place.ckptDir,
      start: { ...run.start, loss: resume?.state.loss, checkpoint: resume?.file, resumed: !!resume },
      stopAtIteration: o.stopAtIteration,
      log,
      reporter: run.reporter,
      metrics,
      lossLabel: 'Con-Loss',
      lossDigits: 2,
      step: async (views: PretrainBatch, stepLr) => {
        const r = await model.step(views.view1, views.view2, stepLr);
        if (model.iteration === startIteration + 1) { const mem = memoryLine(model, o.verbose); if (mem) log.info(mem); }
        return { loss: r.loss, images: views.view1.shape[0], fields: { tau: r.tau, alpha: r.alpha }, nonFinite: r.nonFinite };
      },
      check: (out, it, stepLr) => {
        if (!Number.isFinite(out.loss)) {
          throw new UserError(`the loss is ${out.loss} at iteration ${it} (lr ${stepLr}); training diverged; the last checkpoint written stays`);
        }
        const bad = out.nonFinite;
        if (bad) {
          throw new UserError(
            `tensor '${bad}' holds a non-finite value after iteration ${it} (loss ${out.loss}, lr ${stepLr}); training diverged; the last checkpoint written stays`,
          );
        }
      },
      save: (file, p) => model.save(file, encodeRunState(loopRunState('pretrain', p, {
        itersPerEpoch: run.itersPerEpoch, totalIterations: run.totalIterations, config: cfg, data: run.source.state?.(),
      }, place.ranks.worldSize > 1 ? { worldSize: place.ranks.worldSize, rank: place.ranks.rank } : undefined))),
      progressNote: (loss) => `loss ${fixed(loss, 3)}${knnNote}`,
      afterEpoch: async (e, it, file) => {
        if (!monitor?.due(e + 1)) return;
        const r = await monitor.run(file);
        log.info(
          `kNN-Monitor: [${e + 1}/${cfg.maxEpoch}], Top-1: ${fixed(r.top1, 2)} (k ${cfg.monitor!.k}, ${r.memory} memory / ` +
            `${r.queries} held-out images, ${fixed(r.seconds, 1)} s)`,
        );
        metrics?.write({ iteration: it, epoch: e + 1, knn_top1: round(r.top1, 4), knn_seconds: round(r.seconds, 3) });
        metrics?.flush();
        knnNote = `, kNN ${fixed(r.top1, 2)}%`;
        this.emit('monitor', { epoch: e + 1, iteration: it, ...r } satisfies MonitorEvent);
      },
    });
  }

  /** The end of a completed run: rank 0 evaluates frozen features (experiment key `evaluation`) and writes the report. */
  private async finish(run: PretrainSetUp, loop: LoopResult): Promise<EvaluationResult | undefined> {
    const { cfg, place, log, metrics, model } = run;
    const { interrupted, lastCheckpoint } = loop;
    if (!interrupted) {
      log.info(`Pre-training of experiment: ${cfg.name} is done (${model.iteration} iterations); checkpoint ${displayPath(lastCheckpoint ?? '')}`);
    }
    if (!place.ranks.lead || interrupted) return undefined;
    let evaluation: EvaluationResult | undefined;
    if (cfg.evaluation && lastCheckpoint) {
      run.reporter.stop();
      log.info(`Evaluating the teacher encoder on frozen features (${describeDataset(cfg.evaluation.test)})...`);
      evaluation = await evaluateFeatures(lastCheckpoint, cfg, run.provider);
      for (const line of formatEvaluation(evaluation, describeDataset(cfg.evaluation.test))) log.info(line);
      atomicWrite(path.join(place.outDir, FILES.evaluation), JSON.stringify(evaluation, null, 2) + '\n');
      this.emit('evaluation', evaluation);
    }
    metrics?.flush();
    await reportAtEnd(place.outDir, log); // report.html (lib/report); a failure there is only a warning
    return evaluation;
  }
}

/** Everything the loop and the end of a pre-training run use, set up once. */
type PretrainSetUp = Awaited<ReturnType<PretrainRun['openData']>> & Awaited<ReturnType<PretrainRun['buildModel']>> &
  ReturnType<PretrainRun['startOutputs']> & {
    cfg: PretrainConfig;
    place: RunPlace;
    resume: ResumePoint | undefined;
    start: Awaited<ReturnType<typeof resumeModel>>;
  };

/** The model at the checkpoint --resume names (its weights, optimizer and iteration), or at the start. */
async function resumeModel(model: PretrainModel, resume: ResumePoint | undefined, schedule: Schedule): Promise<{ epoch: number; batch: number; iteration: number; lr: number }> {
  if (!resume) return { epoch: 0, batch: 0, iteration: model.iteration, lr: schedule.lrAt(0) };
  try {
    await model.load(resume.file);
  } catch (e) {
    throw new UserError(`cannot resume from ${resume.file}: ${errorMessage(e)}`);
  }
  if (model.iteration !== resume.state.iteration) {
    throw new UserError(`cannot resume from ${resume.file}: the model is at iteration ${model.iteration}, its metadata says ${resume.state.iteration}`);
  }
  return { epoch: resume.state.epoch, batch: resume.state.batch, iteration: model.iteration, lr: resume.state.lr };
}

function describeDataset(d: DatasetConfig): string {
  if (d.kind === 'mnist') return `MNIST ${d.split}`;
  if (d.kind === 'imagefolder') return displayPath(d.root);
  if (d.kind === 'idx') return `IDX ${displayPath(d.images)}`;
  return `synthetic (${d.size} images)`;
}

function newestCheckpointQuiet(dir: string): ReturnType<typeof newestCheckpoint> {
  try {
    return newestCheckpoint(dir, 'pretrain');
  } catch {
    return undefined;
  }
}

export function resolvePretrainExperiment(o: PretrainOptions): Experiment<'pretrain'> {
  const exp = o.experiment === undefined && o.resume ? (experimentFromCheckpoint(o) ?? pretrainBase) : resolveExperiment(o.experiment, 'pretrain', pretrainBase);
  const withName = exp.config.name ? exp : exp.named('momentum2_teacher_exp');
  return applyOverrides(withName, o);
}

/** `--resume` without `-f`: the experiment the checkpoint was written with. */
function experimentFromCheckpoint(o: PretrainOptions): Experiment<'pretrain'> | undefined {
  let file: string | undefined;
  if (typeof o.resume === 'string') file = o.resume;
  else {
    const dir = path.join(o.outputDir ?? pretrainBase.config.outputDir, o.name ?? 'momentum2_teacher_exp');
    file = fs.existsSync(dir) ? newestCheckpointQuiet(dir)?.file : undefined;
  }
  if (!file || !fs.existsSync(file)) return undefined;
  const state = readRunState(file);
  if (state.kind !== 'pretrain' || !state.config) return undefined;
  return resolveExperiment({ ...(state.config as PretrainConfig) }, 'pretrain', pretrainBase);
}

/** Keys that must match between a checkpoint and the run resuming it (for bitwise continuation). */
const RESUME_KEYS: (keyof PretrainConfig)[] = [
  'seed', 'batchSize', 'maxEpoch', 'basicLrPerImg', 'scheduler', 'warmupEpochs', 'warmupLr', 'milestones', 'stepEpochs',
  'tauBase', 'optimizer', 'bnDoubleUnbias', 'model', 'data',
];

function checkResumable(state: RunState, cfg: PretrainConfig, file: string): void {
  const old = state.config as Partial<PretrainConfig> | undefined;
  if (!old) return;
  const diffs: string[] = [];
  // Worker count does not change the data (each image's augmentation has its own seed).
  const norm = (k: keyof PretrainConfig, v: unknown) => (k === 'data' && v && typeof v === 'object' ? { ...(v as object), workers: undefined } : v);
  for (const k of RESUME_KEYS) {
    const a = JSON.stringify(norm(k, old[k]));
    const b = JSON.stringify(norm(k, cfg[k]));
    if (a !== b) diffs.push(`  ${k}: checkpoint ${a ?? 'unset'}, now ${b ?? 'unset'}`);
  }
  if (diffs.length) {
    throw new UserError(
      `cannot resume from ${displayPath(file)}: the experiment differs from the one that wrote it\n${diffs.join('\n')}\n` +
        `(resume with the same experiment and flags, e.g. -b ${state.batchSize})`,
    );
  }
  if (state.iteration >= state.totalIterations) {
    throw new UserError(`nothing to resume: ${displayPath(file)} is at the end of training (iteration ${state.iteration}/${state.totalIterations})`);
  }
}

async function nativeModel(config: M2TConfig): Promise<PretrainModel> {
  // Loaded lazily so that everything above works without the native addon.
  const { Momentum2Teacher } = await import('./engine');
  return new Momentum2Teacher(config);
}

export interface PretrainEvents {
  start: StartEvent;
  iteration: IterationEvent;
  epoch: EpochEvent;
  monitor: MonitorEvent;
  checkpoint: { path: string; reason: 'epoch' | 'interrupt' };
  log: string;
  evaluation: EvaluationResult;
  end: PretrainResult;
}

/** Runs a pre-training to the end (or until stopped). `on` subscribes to progress events. */
export async function pretrain(
  options: PretrainOptions & { on?: { [E in keyof PretrainEvents]?: (ev: PretrainEvents[E]) => void } } = {},
): Promise<PretrainResult> {
  const run = new PretrainRun(options);
  for (const [name, fn] of Object.entries(options.on ?? {})) if (fn) run.on(name, fn as (...a: unknown[]) => void);
  return run.run();
}

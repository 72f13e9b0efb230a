// The pre-training run loop (spec §3, §5, §9): epochs of two-view batches, one native step per
// iteration, per-iteration learning rate, logs, metrics, progress, checkpoints, exact resume.
import * as fs from 'fs';
import * as path from 'path';
import { makeDirs } from './run-lock';
import { FILES, RunState, atomicWrite, encodeRunState, newestCheckpoint, readRunState } from './checkpoint';
import { DeviceSpec, checkDevices, describeDevices, engineDevice, parseDevices } from './devices';
import type { M2TConfig, StepResult, ImageBatch } from './engine';
import { UserError, errorMessage } from './errors';
import { DatasetConfig, Experiment, PretrainConfig, displayPath, pretrainBase } from './experiment';
import { ConsoleReporter, MetricsWriter, RunLogger, fixed, formatConfig } from './logging';
import { ExperimentInput, ExperimentOverrides, applyOverrides, resolveExperiment } from './overrides';
import { DataProvider, EpochSource, PretrainBatch, badDataLine, checkDataset, dataProvider } from './data/epoch-source';
import { EvaluationResult, evaluateFeatures, formatEvaluation } from './feature-eval';
import type { ProcessGroup } from './distributed/process-group';
import { KnnMonitor, type MonitorResult } from './monitor';
import { reportAtEnd } from './report';
import { memoryLine } from './memory';
import { LoopPosition, LoopRun, localBatchSize, rankCheckpointDir, rankResume, round, runRanks, runSchedule } from './run-loop';

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
    const devices = checkDevices(typeof o.devices === 'string' ? parseDevices(o.devices) : (o.devices ?? { kind: 'cpu' }), 'training');
    const outDir = path.join(cfg.outputDir, cfg.name!);
    const ranks = runRanks(o.processGroup);
    const { rank, worldSize: world, lead } = ranks;
    const localBatch = localBatchSize(cfg.batchSize, ranks);
    const ckptDir = rankCheckpointDir(outDir, ranks);
    // Locked (by rank 0, for the whole run) before any checkpoint in it is read, so two --resume runs cannot both continue it.
    if (lead && fs.existsSync(outDir)) this.lockFolder(outDir, 'mt-train run');

    // ---- resume: find and check the checkpoint before touching anything -------------------------
    let resumeFile: string | undefined;
    let resumeState: RunState | undefined;
    if (o.resume) {
      if (typeof o.resume === 'string') {
        resumeFile = o.resume;
        resumeState = readRunState(resumeFile);
        if (resumeState.kind !== 'pretrain') throw new UserError(`${resumeFile} is a ${resumeState.kind} checkpoint, not a pre-training one`);
      } else {
        const found = fs.existsSync(outDir) ? newestCheckpoint(outDir, 'pretrain') : undefined;
        if (!found) {
          throw new UserError(
            `--resume: no checkpoint to resume from in ${outDir} (expected ${FILES.lastEpoch} or ${FILES.interrupted}); ` +
              `check --experiment-name and --output-dir, or start without --resume`,
          );
        }
        ({ file: resumeFile, state: resumeState } = found);
      }
      checkResumable(resumeState, cfg, resumeFile);
      ({ file: resumeFile, state: resumeState } = rankResume(resumeFile!, resumeState, ranks, ckptDir));
    }

    checkDataset(cfg.data.train, 'train', '--data-root');
    // Everything that can fail on the user's input is checked before anything is written.
    let logger: RunLogger | undefined;
    let reporter: ConsoleReporter | undefined;
    let source: EpochSource<PretrainBatch> | undefined;
    let metrics: MetricsWriter | undefined;
    try {
      // ---- data -----------------------------------------------------------------------------------
      const provider = o.data ?? dataProvider();
      const monitor = lead ? KnnMonitor.create(cfg, provider) : undefined; // rank 0 measures, as it logs
      source = await provider.openPretrain({
        dataset: cfg.data.train,
        augmentation: cfg.data.augmentation,
        imageSize: cfg.data.imageSize,
        batchSize: localBatch,
        workers: cfg.data.workers,
        seed: cfg.seed,
        rank,
        worldSize: world,
        state: resumeState?.data,
        onBadData: (r) => logger?.warn(badDataLine(r)),
      });
      const ipe = source.batchesPerEpoch;
      if (ipe < 1) {
        throw new UserError(
          `the training set has ${source.size} images, fewer than one batch of ${cfg.batchSize}; use a smaller -b or more data`,
        );
      }
      const K = ipe * cfg.maxEpoch;
      const { schedule, lrBase } = runSchedule(cfg, ipe);
      if (resumeState && (resumeState.itersPerEpoch !== ipe || resumeState.totalIterations !== K)) {
        throw new UserError(
          `cannot resume from ${resumeFile}: it was written with ${resumeState.itersPerEpoch} iterations per epoch ` +
            `(${resumeState.totalIterations} in total), this run has ${ipe} (${K}); the dataset or batch size changed`,
        );
      }

      // ---- model ----------------------------------------------------------------------------------
      const modelConfig: M2TConfig = {
        device: engineDevice(devices),
        arch: cfg.model.arch,
        width: cfg.model.width,
        smallStem: cfg.model.smallStem,
        threads: cfg.threads || undefined,
        seed: cfg.seed,
        hiddenDim: cfg.model.hiddenDim,
        outDim: cfg.model.outDim,
        totalIterations: K,
        tauBase: cfg.tauBase,
        optimizer: { ...cfg.optimizer },
        bnDoubleUnbias: cfg.bnDoubleUnbias,
        precision: cfg.precision,
      };
      const model = o.createModel ? o.createModel(modelConfig) : await nativeModel({ ...modelConfig, processGroup: ranks.group });

      let epoch = 0;
      let batch = 0;
      let lr = schedule.lrAt(0);
      if (resumeFile && resumeState) {
        try {
          await model.load(resumeFile);
        } catch (e) {
          throw new UserError(`cannot resume from ${resumeFile}: ${errorMessage(e)}`);
        }
        if (model.iteration !== resumeState.iteration) {
          throw new UserError(`cannot resume from ${resumeFile}: the model is at iteration ${model.iteration}, its metadata says ${resumeState.iteration}`);
        }
        epoch = resumeState.epoch;
        batch = resumeState.batch;
        lr = resumeState.lr;
      }

      const prev = lead && !resumeFile && fs.existsSync(outDir) ? newestCheckpointQuiet(outDir) : undefined;
      makeDirs(ckptDir);
      if (lead) this.lockFolder(outDir, 'mt-train run');
      const { log, reporter: rep } = this.openLog(path.join(outDir, FILES.trainLog), 'train', o.console, ranks);
      logger = log;
      reporter = rep;
      if (prev) {
        log.warn(
          `${displayPath(outDir)} already holds a checkpoint at iteration ${prev.state.iteration}; starting over ` +
            `(it will be overwritten at the end of the first epoch; use --resume to continue it instead)`,
        );
      }
      log.info(`${exp.sources.length ? `experiment ${displayPath(exp.sources[exp.sources.length - 1])}` : 'experiment'}: ${cfg.name}`);
      log.info(`devices: ${describeDevices(devices)}${world > 1 ? `, ${world} processes (${localBatch} images each per step)` : ''}` +
        `${o.distUrl ? `, dist-url ${o.distUrl}${world > 1 ? '' : ' (unused: single process)'}` : ''}`);
      log.info(`resolved experiment:\n${formatConfig(cfg)}`);
      if (lead) atomicWrite(path.join(outDir, FILES.config), JSON.stringify(cfg, null, 2) + '\n');

      if (o.verbose) log.info(`model: ${JSON.stringify(modelConfig)}`);
      if (resumeFile) log.info(`resumed from ${displayPath(resumeFile)}: epoch ${epoch + 1}, iteration ${model.iteration}/${K}, lr ${lr}`);

      const startIteration = model.iteration;
      metrics = lead ? new MetricsWriter(path.join(outDir, FILES.metrics), startIteration) : undefined;

      const saveState = (p: LoopPosition): RunState => ({
        kind: 'pretrain',
        epoch: p.epoch,
        batch: p.batch,
        iteration: p.iteration,
        lr: p.lr,
        itersPerEpoch: ipe,
        totalIterations: K,
        batchSize: cfg.batchSize,
        seed: cfg.seed,
        data: source!.state?.(),
        config: cfg,
        loss: p.loss,
        reason: p.reason,
        extra: world > 1 ? { worldSize: world, rank } : undefined,
      });

      this.emit('start', {
        config: cfg,
        outputDir: outDir,
        itersPerEpoch: ipe,
        totalIterations: K,
        startIteration,
        resumedFrom: resumeFile,
        datasetSize: source.size,
      } satisfies StartEvent);
      log.info(
        `Training start: ${source.size} images, ${ipe} iterations per epoch, ${K} in total, batch ${cfg.batchSize}, ` +
          `lr_base ${lrBase} (${cfg.scheduler})`,
      );

      let knnNote = ''; // the last kNN monitor reading, on the progress line
      const loop = await this.loop({
        ranks,
        source,
        schedule,
        maxEpoch: cfg.maxEpoch,
        printInterval: cfg.printInterval,
        ckptDir,
        start: { epoch, batch, iteration: startIteration, lr, loss: resumeState?.loss, checkpoint: resumeFile, resumed: !!resumeFile },
        stopAtIteration: o.stopAtIteration,
        log,
        reporter: rep,
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
        save: (file, p) => model.save(file, encodeRunState(saveState(p))),
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
      const { interrupted, lastCheckpoint, lastLoss, epochsCompleted } = loop;
      if (!interrupted) {
        log.info(`Pre-training of experiment: ${cfg.name} is done (${model.iteration} iterations); checkpoint ${displayPath(lastCheckpoint ?? '')}`);
      }
      let evaluation: EvaluationResult | undefined;
      if (lead && !interrupted && cfg.evaluation && lastCheckpoint) {
        rep.stop();
        log.info(`Evaluating the teacher encoder on frozen features (${describeDataset(cfg.evaluation.test)})...`);
        evaluation = await evaluateFeatures(lastCheckpoint, cfg, provider);
        for (const line of formatEvaluation(evaluation, describeDataset(cfg.evaluation.test))) log.info(line);
        atomicWrite(path.join(outDir, FILES.evaluation), JSON.stringify(evaluation, null, 2) + '\n');
        this.emit('evaluation', evaluation);
      }
      if (lead && !interrupted) {
        metrics?.flush();
        await reportAtEnd(outDir, log); // report.html (lib/report); a failure there is only a warning
      }
      const result: PretrainResult = {
        outputDir: outDir,
        checkpoint: lastCheckpoint,
        iterations: model.iteration,
        totalIterations: K,
        epochsCompleted,
        interrupted,
        lastLoss,
        config: cfg,
        evaluation,
      };
      this.emit('end', result);
      return result;
    } catch (e) {
      logger?.error(errorMessage(e));
      throw e;
    } finally {
      reporter?.stop();
      metrics?.close();
      await source?.close();
      logger?.close();
    }
  }
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

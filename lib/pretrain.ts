// The pre-training run loop (spec §3, §5, §9): epochs of two-view batches, one native step per
// iteration, per-iteration learning rate, logs, metrics, progress, checkpoints, exact resume.
import * as fs from 'fs';
import { StoppableRun } from './run';
import * as path from 'path';
import { makeDirs } from './run-lock';
import { FILES, RunState, atomicWrite, encodeRunState, newestCheckpoint, readRunState } from './checkpoint';
import { DeviceSpec, checkDevices, describeDevices, engineDevice, parseDevices } from './devices';
import type { M2TConfig, StepResult, ImageBatch } from './engine';
import { UserError, errorMessage } from './errors';
import { DatasetConfig, Experiment, PretrainConfig, displayPath, pretrainBase } from './experiment';
import { ConsoleReporter, Meter, MetricsWriter, RunLogger, consoleReporter, fixed, formatConfig, formatRemaining } from './logging';
import { ExperimentInput, ExperimentOverrides, applyOverrides, resolveExperiment } from './overrides';
import { DataProvider, EpochSource, PretrainBatch, badDataLine, checkDataset, dataProvider } from './pipeline';
import { Schedule, makeSchedule } from './schedules';
import { EvaluationResult, evaluateFeatures, formatEvaluation } from './evaluate';
import type { ProcessGroup } from './distributed/process-group';
import { KnnMonitor, type MonitorResult } from './monitor';
import { reportAtEnd } from './report';
import { memoryLine } from './memory';

/** How long ranks wait for rank 0 at an epoch's end (checkpoint, kNN monitor): generous, since a dead rank is
 *  noticed at once through its closed connections; a hung one within the group's own timeout at the next step. */
const EPOCH_END_WAIT_MS = 6 * 3600 * 1000;

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
export class PretrainRun extends StoppableRun<PretrainResult> {
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
    const pg = o.processGroup;
    const rank = pg?.rank ?? 0, world = pg?.worldSize ?? 1;
    const lead = rank === 0;
    if (cfg.batchSize % world !== 0) {
      throw new UserError(`the batch size ${cfg.batchSize} (-b) is not divisible by the ${world} processes of this run`);
    }
    const localBatch = cfg.batchSize / world;
    // Rank 0 writes the run's files; rank r > 0 keeps its own checkpoints (its BN statistics) under ranks/rank<r>/.
    const ckptDir = lead ? outDir : path.join(outDir, 'ranks', `rank${rank}`);
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
      const wrote = Number((resumeState.extra as { worldSize?: unknown } | undefined)?.worldSize ?? 1);
      if (wrote !== world) {
        throw new UserError(
          `cannot resume from ${displayPath(resumeFile!)}: it was written by a run of ${wrote} process(es), this one has ${world}; ` +
            `resume with the same number of processes (-d / --nproc)`,
        );
      }
      if (!lead) {
        const own = path.join(ckptDir, path.basename(resumeFile!));
        if (!fs.existsSync(own)) throw new UserError(`cannot resume rank ${rank}: its checkpoint ${displayPath(own)} is missing`);
        resumeFile = own;
        resumeState = readRunState(own);
      }
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
      const lrBase = cfg.basicLrPerImg * cfg.batchSize;
      const schedule: Schedule = makeSchedule({
        scheduler: cfg.scheduler,
        lrBase,
        itersPerEpoch: ipe,
        totalEpochs: cfg.maxEpoch,
        warmupEpochs: cfg.warmupEpochs,
        warmupLr: cfg.warmupLr,
        milestones: cfg.milestones,
        stepEpochs: cfg.stepEpochs,
      });
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
      };
      const model = o.createModel ? o.createModel(modelConfig) : await nativeModel({ ...modelConfig, processGroup: pg });

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
      const log = (logger = new RunLogger(lead ? path.join(outDir, FILES.trainLog) : undefined));
      const rep = (reporter = consoleReporter('train', lead ? (o.console ?? 'silent') : 'silent'));
      log.addSink((line, level) => {
        if (level === 'ERROR') return; // the caller reports errors; the log file keeps them
        rep.line(line);
        this.emit('log', line);
      });
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

      const saveState = (reason: RunState['reason'], e: number, b: number, loss: number | undefined): RunState => ({
        kind: 'pretrain',
        epoch: b >= ipe ? e + 1 : e,
        batch: b >= ipe ? 0 : b,
        iteration: model.iteration,
        lr,
        itersPerEpoch: ipe,
        totalIterations: K,
        batchSize: cfg.batchSize,
        seed: cfg.seed,
        data: source!.state?.(),
        config: cfg,
        loss,
        reason,
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

      const iterTime = new Meter(50);
      let knnNote = ''; // the last kNN monitor reading, on the progress line
      let lastLoss: number | undefined = resumeState?.loss;
      let lastCheckpoint: string | undefined = resumeFile;
      let epochsCompleted = epoch;
      let interrupted = false;

      const finishInterrupted = async (e: number, b: number, saved?: string) => {
        // At an epoch boundary the epoch checkpoint just written is the one to resume from.
        const file = saved ?? path.join(ckptDir, FILES.interrupted);
        if (!saved) {
          await model.save(file, encodeRunState(saveState('interrupt', e, b, lastLoss)));
          this.emit('checkpoint', { path: file, reason: 'interrupt' });
        }
        lastCheckpoint = file;
        const at = model.iteration;
        log.warn(
          `Interrupted (${this.stopReason ?? 'stop'}) at epoch ${Math.min(e + 1, cfg.maxEpoch)}, iteration ${at}/${K}: ` +
            `checkpoint saved to ${displayPath(file)}; continue with --resume`,
        );
      };

      if (this.stopping || (o.stopAtIteration !== undefined && model.iteration >= o.stopAtIteration)) {
        interrupted = true;
        if (model.iteration > startIteration || !resumeFile) await finishInterrupted(epoch, batch);
      }

      outer: for (; !interrupted && epoch < cfg.maxEpoch; epoch++, batch = 0) {
        let b = batch;
        let tWait = performance.now();
        for await (const views of source.batches(epoch, batch)) {
          const t0 = performance.now();
          const dataTime = (t0 - tWait) / 1000;
          const stepLr = lr;
          let res: StepResult;
          try {
            res = await model.step(views.view1, views.view2, stepLr);
          } finally {
            views.release?.();
          }
          // Several processes: the logged loss is the mean over ranks, and a stop asked of any rank (Ctrl-C,
          // SIGTERM) stops every rank after this same iteration — one all-reduce of two numbers per step.
          let stopAsked = this.stopping;
          if (pg && world > 1) {
            const sync = new Float32Array([res.loss, stopAsked ? 1 : 0]);
            await pg.allreduceSum(sync);
            res = { ...res, loss: sync[0] / world };
            stopAsked = sync[1] > 0;
            if (stopAsked && !this.stopping) this.stopReason = 'another rank stopped';
          }
          const t1 = performance.now();
          const stepTime = (t1 - t0) / 1000;
          const it = model.iteration;
          lr = schedule.lrAt(it);
          b++;
          lastLoss = res.loss;
          if (it === startIteration + 1) { const mem = memoryLine(model, o.verbose); if (mem) log.info(mem); }
          iterTime.add(dataTime + stepTime);
          const n = views.view1.shape[0] * world;
          const ips = iterTime.mean > 0 ? n / iterTime.mean : 0;
          const eta = (K - it) * iterTime.mean;
          const ev: IterationEvent = {
            iteration: it,
            totalIterations: K,
            epoch: epoch + 1,
            maxEpoch: cfg.maxEpoch,
            batch: b,
            itersPerEpoch: ipe,
            lr: stepLr,
            nextLr: lr,
            loss: res.loss,
            tau: res.tau,
            alpha: res.alpha,
            imagesPerSec: ips,
            dataTime,
            stepTime,
            etaSeconds: eta,
          };
          metrics?.write({
            iteration: it,
            epoch: epoch + 1,
            batch: b,
            lr: stepLr,
            loss: res.loss,
            tau: res.tau,
            alpha: res.alpha,
            imagesPerSec: round(ips, 2),
            dataTime: round(dataTime, 5),
            stepTime: round(stepTime, 5),
          });
          this.emit('iteration', ev);
          rep.progress({ value: it, total: K, epoch: epoch + 1, maxEpoch: cfg.maxEpoch, imagesPerSec: ips, etaSeconds: eta, extra: `loss ${fixed(res.loss, 3)}${knnNote}` });
          if (b % cfg.printInterval === 0) {
            log.info(
              `[${epoch + 1}/${cfg.maxEpoch}], remain:${formatRemaining(eta)}, It:[${b}/${ipe}], ` +
                `Data-Time:${fixed(dataTime, 3)}, LR:${fixed(lr, 4)}, Loss:${fixed(res.loss, 2)}, Img/s:${fixed(ips, 1)}`,
            );
          }
          if (!Number.isFinite(res.loss)) {
            metrics?.flush();
            throw new UserError(`the loss is ${res.loss} at iteration ${it} (lr ${stepLr}); training diverged; the last checkpoint written stays`);
          }
          if (res.nonFinite) {
            metrics?.flush();
            throw new UserError(
              `tensor '${res.nonFinite}' holds a non-finite value after iteration ${it} (loss ${res.loss}, lr ${stepLr}); training diverged; the last checkpoint written stays`,
            );
          }
          // A stop during the very last iteration just lets the run finish normally.
          // One process: a stop asked by an 'iteration' handler above counts at once; several: at the next sync.
          if (world === 1) stopAsked = this.stopping;
          if ((stopAsked || (o.stopAtIteration !== undefined && it >= o.stopAtIteration)) && it < K) {
            if (!stopAsked) this.stopReason = `stopAtIteration ${o.stopAtIteration}`;
            metrics?.flush();
            let saved: string | undefined;
            if (b >= ipe) {
              // The epoch is complete anyway: its checkpoint is the interruption's.
              await this.endEpoch(log, model, ckptDir, saveState('epoch', epoch, b, lastLoss), epoch, cfg.maxEpoch, lr, lastLoss);
              saved = path.join(ckptDir, FILES.lastEpoch);
              epochsCompleted = epoch + 1;
            }
            await finishInterrupted(epoch, b, saved);
            interrupted = true;
            break outer;
          }
          tWait = performance.now();
        }
        if (b < ipe) throw new Error(`data source ended epoch ${epoch + 1} after ${b} of ${ipe} batches`);
        metrics?.flush();
        await this.endEpoch(log, model, ckptDir, saveState('epoch', epoch, b, lastLoss), epoch, cfg.maxEpoch, lr, lastLoss);
        lastCheckpoint = path.join(ckptDir, FILES.lastEpoch);
        epochsCompleted = epoch + 1;
        if (monitor?.due(epoch + 1)) {
          const r = await monitor.run(lastCheckpoint);
          log.info(
            `kNN-Monitor: [${epoch + 1}/${cfg.maxEpoch}], Top-1: ${fixed(r.top1, 2)} (k ${cfg.monitor!.k}, ${r.memory} memory / ` +
              `${r.queries} held-out images, ${fixed(r.seconds, 1)} s)`,
          );
          metrics?.write({ iteration: model.iteration, epoch: epoch + 1, knn_top1: round(r.top1, 4), knn_seconds: round(r.seconds, 3) });
          metrics?.flush();
          knnNote = `, kNN ${fixed(r.top1, 2)}%`;
          this.emit('monitor', { epoch: epoch + 1, iteration: model.iteration, ...r } satisfies MonitorEvent);
        }
        // The other ranks wait here while rank 0 writes the checkpoint and measures, however long that takes.
        if (pg && world > 1) await pg.barrier(EPOCH_END_WAIT_MS);
      }
      if (!interrupted) {
        const stale = path.join(ckptDir, FILES.interrupted);
        if (fs.existsSync(stale)) fs.rmSync(stale);
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

  private async endEpoch(
    logger: RunLogger,
    model: PretrainModel,
    outDir: string,
    state: RunState,
    epoch: number,
    maxEpoch: number,
    lr: number,
    loss: number | undefined,
  ): Promise<void> {
    logger.info(`Train-Epoch: [${epoch + 1}/${maxEpoch}], LR: ${fixed(lr, 4)}, Con-Loss: ${fixed(loss ?? NaN, 2)}`);
    const file = path.join(outDir, FILES.lastEpoch);
    await model.save(file, encodeRunState(state));
    // A mid-epoch checkpoint from before is now older than this one.
    const stale = path.join(outDir, FILES.interrupted);
    if (fs.existsSync(stale)) fs.rmSync(stale);
    this.emit('checkpoint', { path: file, reason: 'epoch' });
    this.emit('epoch', { epoch: epoch + 1, maxEpoch, iteration: model.iteration, lr, loss: loss ?? NaN, checkpoint: file } satisfies EpochEvent);
  }
}

function describeDataset(d: DatasetConfig): string {
  if (d.kind === 'mnist') return `MNIST ${d.split}`;
  if (d.kind === 'imagefolder') return displayPath(d.root);
  if (d.kind === 'idx') return `IDX ${displayPath(d.images)}`;
  return `synthetic (${d.size} images)`;
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
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

// The one run loop of mt-train and mt-eval: epochs × batches at a per-iteration learning rate, the
// logging cadence, metrics, progress, epoch-end and interruption checkpoints, stop handling, and the
// rank context of a data-parallel run. Each run supplies its step and what it adds at an epoch's end.
// Also the set-up steps both runs share: the devices, this rank's place (output and checkpoint folders,
// batch share, lock), the resume point, the outputs (log, console, config.json, metrics) and closing them.
import * as fs from 'fs';
import * as path from 'path';
import { FILES, RunState, atomicWrite, newestCheckpoint, readRunState } from './checkpoint';
import type { EpochSource } from './data/epoch-source';
import { DeviceSpec, checkDevices, parseDevices } from './devices';
import { UserError, errorMessage } from './errors';
import { AnyConfig, displayPath } from './experiment';
import { ConsoleReporter, Meter, MetricsWriter, RunLogger, consoleReporter, fixed, formatRemaining } from './logging';
import { makeDirs } from './run-lock';
import type { ProcessGroup } from './distributed/process-group';
import { StoppableRun } from './run';
import { Schedule, makeSchedule } from './schedules';

/** This process's place in a run, decided once: rank 0 of 1 without a process group. Rank 0 (the lead)
 *  alone writes the run's logs, metrics and checkpoints; rank r > 0 keeps its own checkpoints (its BN
 *  statistics) under ranks/rank<r>/ for an exact resume. */
export interface RunRanks {
  rank: number;
  worldSize: number;
  lead: boolean;
  group?: ProcessGroup;
}

export function runRanks(group?: ProcessGroup): RunRanks {
  const rank = group?.rank ?? 0, worldSize = group?.worldSize ?? 1;
  return { rank, worldSize, lead: rank === 0, group: worldSize > 1 ? group : undefined };
}

/** The per-process batch: the run's batch split evenly between its processes, as the reference. */
export function localBatchSize(batchSize: number, r: RunRanks): number {
  if (batchSize % r.worldSize !== 0) {
    throw new UserError(`the batch size ${batchSize} (-b) is not divisible by the ${r.worldSize} processes of this run`);
  }
  return batchSize / r.worldSize;
}

/** Where this rank writes its checkpoints. */
export function rankCheckpointDir(outDir: string, r: RunRanks): string {
  return r.lead ? outDir : path.join(outDir, 'ranks', `rank${r.rank}`);
}

/** A resume must run with the world size that wrote the checkpoint; rank r > 0 continues from its own
 *  copy of the checkpoint rank 0 found. Returns the file and state this rank resumes from. */
export function rankResume(file: string, state: RunState, r: RunRanks, ckptDir: string): { file: string; state: RunState } {
  const wrote = Number((state.extra as { worldSize?: unknown } | undefined)?.worldSize ?? 1);
  if (wrote !== r.worldSize) {
    throw new UserError(
      `cannot resume from ${displayPath(file)}: it was written by a run of ${wrote} process(es), this one has ${r.worldSize}; ` +
        `resume with the same number of processes (-d / --nproc)`,
    );
  }
  if (r.lead) return { file, state };
  const own = path.join(ckptDir, path.basename(file));
  if (!fs.existsSync(own)) throw new UserError(`cannot resume rank ${r.rank}: its checkpoint ${displayPath(own)} is missing`);
  return { file: own, state: readRunState(own) };
}

/** The learning rate of every iteration (spec §5), lr_base = basicLrPerImg · batchSize. */
export function runSchedule(cfg: AnyConfig, itersPerEpoch: number): { schedule: Schedule; lrBase: number } {
  const lrBase = cfg.basicLrPerImg * cfg.batchSize;
  const schedule = makeSchedule({
    scheduler: cfg.scheduler,
    lrBase,
    itersPerEpoch,
    totalEpochs: cfg.maxEpoch,
    warmupEpochs: cfg.warmupEpochs,
    warmupLr: cfg.warmupLr,
    milestones: cfg.milestones,
    stepEpochs: cfg.stepEpochs,
  });
  return { schedule, lrBase };
}

/** What a checkpoint records of the loop's position. */
export interface LoopPosition {
  reason: RunState['reason'];
  /** The position to continue from (the next epoch once an epoch is complete). */
  epoch: number;
  batch: number;
  iteration: number;
  lr: number;
  loss: number | undefined;
}

export interface StepOutcome {
  loss: number;
  /** Images this process stepped on. */
  images: number;
  /** Run-specific numbers for the metrics row and the 'iteration' event (tau, alpha). */
  fields?: Record<string, number>;
  /** A tensor that holds a non-finite value after the step (the model's own scan). */
  nonFinite?: string;
}

export interface LoopSpec<B extends { release?(): void }> {
  ranks: RunRanks;
  source: EpochSource<B>;
  schedule: Schedule;
  maxEpoch: number;
  printInterval: number;
  /** Where the epoch and interruption checkpoints go (rankCheckpointDir). */
  ckptDir: string;
  start: { epoch: number; batch: number; iteration: number; lr: number; loss: number | undefined; checkpoint: string | undefined; resumed: boolean };
  stopAtIteration?: number;
  log: RunLogger;
  reporter: ConsoleReporter;
  metrics: MetricsWriter | undefined;
  /** Log lines: "Train-Epoch: …, <lossLabel>: x" with the loss at `lossDigits` decimals. */
  lossLabel: string;
  lossDigits: number;
  /** One optimisation step on a batch (the loop releases the batch afterwards). */
  step(batch: B, lr: number): Promise<StepOutcome>;
  /** Throws (a UserError naming the iteration) when the step diverged. */
  check(outcome: StepOutcome, iteration: number, lr: number): void;
  /** Writes a checkpoint of the model at `pos` to `file`. */
  save(file: string, pos: LoopPosition): Promise<void>;
  /** Progress-line note (e.g. the best top-1 so far). */
  progressNote?(loss: number): string | undefined;
  /** At an epoch's end before its checkpoint (evaluation). */
  beforeEpochSave?(epoch: number, iteration: number): Promise<void>;
  /** Right after the epoch checkpoint `file` is written (best-checkpoint copy). */
  afterEpochSave?(epoch: number, file: string): Promise<void>;
  /** After a completed epoch that does not end in a stop (kNN monitor); the other ranks wait at a barrier. */
  afterEpoch?(epoch: number, iteration: number, file: string): Promise<void>;
}

export interface LoopResult {
  iteration: number;
  epochsCompleted: number;
  interrupted: boolean;
  lastLoss: number | undefined;
  lastCheckpoint: string | undefined;
}

/** -d as given to a run (a string, a parsed list, or the CPU by default), checked for `what`. */
export function runDevices(devices: string | DeviceSpec | undefined, what: 'training' | 'linear evaluation'): DeviceSpec {
  return checkDevices(typeof devices === 'string' ? parseDevices(devices) : (devices ?? { kind: 'cpu' }), what);
}

/** Where a run writes and this rank's share of it. */
export interface RunPlace {
  /** The run's folder (rank 0 writes its files there). */
  outDir: string;
  /** This rank's checkpoint folder (rankCheckpointDir). */
  ckptDir: string;
  ranks: RunRanks;
  /** This process's images per step. */
  localBatch: number;
  /** What the folder lock calls the run ('mt-train run'). */
  what: string;
}

/** The checkpoint a run continues from (this rank's copy of it). */
export interface ResumePoint {
  file: string;
  state: RunState;
}

/** A checkpoint's run state at `p`: what every run records; `extra` holds the run's own. */
export function loopRunState(
  kind: RunState['kind'],
  p: LoopPosition,
  run: { itersPerEpoch: number; totalIterations: number; config: AnyConfig; data: unknown },
  extra: RunState['extra'],
): RunState {
  return {
    kind,
    epoch: p.epoch,
    batch: p.batch,
    iteration: p.iteration,
    lr: p.lr,
    itersPerEpoch: run.itersPerEpoch,
    totalIterations: run.totalIterations,
    batchSize: run.config.batchSize,
    seed: run.config.seed,
    data: run.data as RunState['data'],
    config: run.config,
    loss: p.loss,
    reason: p.reason,
    extra,
  };
}

/** What a run holds open while it runs: closed at the end whatever happens. */
export class RunResources {
  log?: RunLogger;
  reporter?: ConsoleReporter;
  metrics?: MetricsWriter;
  readonly sources: EpochSource<{ release?(): void }>[] = [];

  async close(): Promise<void> {
    this.reporter?.stop();
    this.metrics?.close();
    for (const s of this.sources) await s.close();
    this.log?.close();
  }
}

/** A run (pre-training, linear evaluation) whose body is the one loop below. */
export abstract class LoopRun<R> extends StoppableRun<R> {
  /** This rank's place in the run writing to `outDir`. Rank 0 locks an existing folder for the whole run
   *  before any checkpoint in it is read, so two --resume runs cannot both continue it. */
  protected placeRun(outDir: string, batchSize: number, group: ProcessGroup | undefined, what: string): RunPlace {
    const ranks = runRanks(group);
    const localBatch = localBatchSize(batchSize, ranks);
    const ckptDir = rankCheckpointDir(outDir, ranks);
    if (ranks.lead && fs.existsSync(outDir)) this.lockFolder(outDir, what);
    return { outDir, ckptDir, ranks, localBatch, what };
  }

  /** --resume: the given checkpoint, or (true) the newest of the run's folder; of `kind`, passing the run's
   *  own `check`; then this rank's copy of it (rankResume). Undefined without --resume. */
  protected resumePoint(
    resume: boolean | string | undefined,
    place: RunPlace,
    kind: RunState['kind'],
    o: { kindName: string; noneFound: string; check(state: RunState, file: string): void },
  ): ResumePoint | undefined {
    if (!resume) return undefined;
    let found: ResumePoint | undefined;
    if (typeof resume === 'string') found = { file: resume, state: readRunState(resume) };
    else {
      found = fs.existsSync(place.outDir) ? newestCheckpoint(place.outDir, kind) : undefined;
      if (!found) throw new UserError(o.noneFound);
    }
    if (found.state.kind !== kind) throw new UserError(`${found.file} is a ${found.state.kind} checkpoint, not a ${o.kindName} one`);
    o.check(found.state, found.file);
    return rankResume(found.file, found.state, place.ranks, place.ckptDir);
  }

  /** Runs `body` with the run's open resources; an error is logged (the caller reports it) and rethrown,
   *  and the resources are closed either way. */
  protected async withResources<T>(body: (res: RunResources) => Promise<T>): Promise<T> {
    const res = new RunResources();
    try {
      return await body(res);
    } catch (e) {
      res.log?.error(errorMessage(e));
      throw e;
    } finally {
      await res.close();
    }
  }

  /** Once every input is checked: this rank's checkpoint folder, rank 0's lock, the log `logFile`, the
   *  console, and rank 0's config.json and metrics (kept up to `startIteration`), into `res`. */
  protected openOutputs(
    place: RunPlace,
    res: RunResources,
    o: { logFile: string; label: string; console: Parameters<typeof consoleReporter>[1]; config: AnyConfig; startIteration: number },
  ): { log: RunLogger; reporter: ConsoleReporter; metrics: MetricsWriter | undefined } {
    makeDirs(place.ckptDir);
    const { lead } = place.ranks;
    if (lead) this.lockFolder(place.outDir, place.what);
    const { log, reporter } = this.openLog(path.join(place.outDir, o.logFile), o.label, o.console, place.ranks);
    res.log = log;
    res.reporter = reporter;
    if (lead) atomicWrite(path.join(place.outDir, FILES.config), JSON.stringify(o.config, null, 2) + '\n');
    const metrics = lead ? new MetricsWriter(path.join(place.outDir, FILES.metrics), o.startIteration) : undefined;
    res.metrics = metrics;
    return { log, reporter, metrics };
  }

  /** The run's log and console: rank 0 writes `file` and reports progress; the other ranks log nowhere.
   *  Every line but errors (the caller reports those) also goes out as a 'log' event. */
  protected openLog(file: string, label: string, mode: Parameters<typeof consoleReporter>[1], r: RunRanks): { log: RunLogger; reporter: ConsoleReporter } {
    const log = new RunLogger(r.lead ? file : undefined);
    const reporter = consoleReporter(label, r.lead ? (mode ?? 'silent') : 'silent');
    log.addSink((line, level) => {
      if (level === 'ERROR') return;
      reporter.line(line);
      this.emit('log', line);
    });
    return { log, reporter };
  }

  protected async loop<B extends { release?(): void }>(s: LoopSpec<B>): Promise<LoopResult> {
    const { source, schedule, maxEpoch, log, metrics, ckptDir } = s;
    const { worldSize: world, group } = s.ranks;
    const ipe = source.batchesPerEpoch;
    const K = ipe * maxEpoch;
    let { epoch, batch, iteration, lr } = s.start;
    let lastLoss = s.start.loss;
    let lastCheckpoint = s.start.checkpoint;
    let epochsCompleted = epoch;
    let interrupted = false;
    const pos = (reason: RunState['reason'], e: number, b: number): LoopPosition => ({
      reason, epoch: b >= ipe ? e + 1 : e, batch: b >= ipe ? 0 : b, iteration, lr, loss: lastLoss,
    });
    const stopAt = (it: number) => s.stopAtIteration !== undefined && it >= s.stopAtIteration;

    const endEpoch = async (e: number, b: number): Promise<string> => {
      log.info(`Train-Epoch: [${e + 1}/${maxEpoch}], LR: ${fixed(lr, 4)}, ${s.lossLabel}: ${fixed(lastLoss ?? NaN, s.lossDigits)}`);
      metrics?.flush();
      await s.beforeEpochSave?.(e, iteration);
      metrics?.flush();
      const file = path.join(ckptDir, FILES.lastEpoch);
      await s.save(file, pos('epoch', e, b));
      // A mid-epoch checkpoint from before is now older than this one.
      const stale = path.join(ckptDir, FILES.interrupted);
      if (fs.existsSync(stale)) fs.rmSync(stale);
      this.emit('checkpoint', { path: file, reason: 'epoch' });
      await s.afterEpochSave?.(e, file);
      lastCheckpoint = file;
      epochsCompleted = e + 1;
      this.emit('epoch', { epoch: e + 1, maxEpoch, iteration, lr, loss: lastLoss ?? NaN, checkpoint: file });
      return file;
    };

    const finishInterrupted = async (e: number, b: number, saved?: string) => {
      // At an epoch boundary the epoch checkpoint just written is the one to resume from.
      const file = saved ?? path.join(ckptDir, FILES.interrupted);
      if (!saved) {
        await s.save(file, pos('interrupt', e, b));
        this.emit('checkpoint', { path: file, reason: 'interrupt' });
      }
      lastCheckpoint = file;
      log.warn(
        `Interrupted (${this.stopReason ?? 'stop'}) at epoch ${Math.min(e + 1, maxEpoch)}, iteration ${iteration}/${K}: ` +
          `checkpoint saved to ${displayPath(file)}; continue with --resume`,
      );
    };

    if (this.stopping || stopAt(iteration)) {
      interrupted = true;
      if (!s.start.resumed) await finishInterrupted(epoch, batch);
    }

    const iterTime = new Meter(50);
    outer: for (; !interrupted && epoch < maxEpoch; epoch++, batch = 0) {
      let b = batch;
      let tWait = performance.now();
      for await (const data of source.batches(epoch, batch)) {
        const t0 = performance.now();
        const dataTime = (t0 - tWait) / 1000;
        const stepLr = lr;
        let out: StepOutcome;
        try {
          out = await s.step(data, stepLr);
        } finally {
          data.release?.();
        }
        // Several processes: the logged loss is the mean over ranks, and a stop asked of any rank (Ctrl-C,
        // SIGTERM) stops every rank after this same iteration — one all-reduce of two numbers per step.
        let stopAsked = this.stopping;
        if (group) {
          const sync = new Float32Array([out.loss, stopAsked ? 1 : 0]);
          await group.allreduceSum(sync);
          out = { ...out, loss: sync[0] / world };
          stopAsked = sync[1] > 0;
          if (stopAsked && !this.stopping) this.stopReason = 'another rank stopped';
        }
        const stepTime = (performance.now() - t0) / 1000;
        const it = ++iteration;
        lr = schedule.lrAt(it);
        b++;
        lastLoss = out.loss;
        iterTime.add(dataTime + stepTime);
        const ips = iterTime.mean > 0 ? (out.images * world) / iterTime.mean : 0;
        const eta = (K - it) * iterTime.mean;
        metrics?.write({
          iteration: it, epoch: epoch + 1, batch: b, lr: stepLr, loss: out.loss, ...out.fields,
          imagesPerSec: round(ips, 2), dataTime: round(dataTime, 5), stepTime: round(stepTime, 5),
        });
        this.emit('iteration', {
          iteration: it, totalIterations: K, epoch: epoch + 1, maxEpoch, batch: b, itersPerEpoch: ipe, lr: stepLr, nextLr: lr,
          loss: out.loss, ...out.fields, imagesPerSec: ips, dataTime, stepTime, etaSeconds: eta,
        });
        s.reporter.progress({ value: it, total: K, epoch: epoch + 1, maxEpoch, imagesPerSec: ips, etaSeconds: eta, extra: s.progressNote?.(out.loss) });
        if (b % s.printInterval === 0) {
          log.info(
            `[${epoch + 1}/${maxEpoch}], remain:${formatRemaining(eta)}, It:[${b}/${ipe}], Data-Time:${fixed(dataTime, 3)}, ` +
              `LR:${fixed(lr, 4)}, Loss:${fixed(out.loss, s.lossDigits)}, Img/s:${fixed(ips, 1)}`,
          );
        }
        try {
          s.check(out, it, stepLr);
        } catch (e) {
          metrics?.flush();
          throw e;
        }
        // A stop during the very last iteration just lets the run finish normally.
        // One process: a stop asked by an 'iteration' handler above counts at once; several: at the next sync.
        if (!group) stopAsked = this.stopping;
        if ((stopAsked || stopAt(it)) && it < K) {
          if (!stopAsked) this.stopReason = `stopAtIteration ${s.stopAtIteration}`;
          metrics?.flush();
          // The epoch is complete anyway: its checkpoint is the interruption's.
          const saved = b >= ipe ? await endEpoch(epoch, b) : undefined;
          await finishInterrupted(epoch, b, saved);
          interrupted = true;
          break outer;
        }
        tWait = performance.now();
      }
      if (b < ipe) throw new Error(`data source ended epoch ${epoch + 1} after ${b} of ${ipe} batches`);
      // Every rank writes its checkpoint; rank 0 also evaluates and measures, however long that takes, while
      // the ranks keep answering each other (a rank that dies or hangs meanwhile fails the run within the
      // group timeout).
      await whileRanksWork(group, async () => {
        const file = await endEpoch(epoch, b);
        await s.afterEpoch?.(epoch, iteration, file);
      });
    }
    if (!interrupted) {
      const stale = path.join(ckptDir, FILES.interrupted);
      if (fs.existsSync(stale)) fs.rmSync(stale);
    }
    return { iteration, epochsCompleted, interrupted, lastLoss, lastCheckpoint };
  }
}

/** `work` on every rank of `group` (ProcessGroup.whileWorking), or just `work` in one process. */
export function whileRanksWork<T>(group: ProcessGroup | undefined, work: () => Promise<T>): Promise<T> {
  return group ? group.whileWorking(work) : work();
}

export function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

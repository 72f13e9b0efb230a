// Checkpoint files and the run state stored in their safetensors metadata.
//
// The engine's save/load carry model, optimizer buffers, iteration count and momentum-BN
// state; this module adds what the run loop needs to continue exactly: epoch and batch
// position, learning rate, seeds, data-loader position, and the experiment itself.
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from './errors';
import { makeDirs } from './run-lock';

export const CHECKPOINT_FORMAT = '1';
/** Our metadata keys ('run.*' and 'format' belong to the engine). */
export const META_PREFIX = 'run.';

/** File names inside an output folder. */
export const FILES = {
  trainLog: 'train_log.txt',
  evalLog: 'eval_log.txt',
  metrics: 'metrics.jsonl',
  config: 'config.json',
  /** Scores on frozen features after pre-training (experiments with an `evaluation` block). */
  evaluation: 'evaluation.json',
  /** Written at the end of every epoch (the reference's `last_epoch`). */
  lastEpoch: 'last_epoch_ckpt.safetensors',
  /** Written when a run is stopped mid-epoch (signal, stop(), stopAtIteration). */
  interrupted: 'interrupted_ckpt.safetensors',
  /** Linear evaluation: a copy of the checkpoint with the best top-1. */
  best: 'best_ckpt.safetensors',
} as const;

/** Run state kept in checkpoint metadata (all values are strings on disk). */
export interface RunState {
  kind: 'pretrain' | 'linear_eval';
  /** Position to continue from: epoch (0-based) and batch within it. */
  epoch: number;
  batch: number;
  /** Optimiser steps completed. */
  iteration: number;
  /** Learning rate of the next step. */
  lr: number;
  itersPerEpoch: number;
  totalIterations: number;
  batchSize: number;
  seed: number;
  /** Data-loader position/state, opaque JSON from the data layer (if it has any). */
  data?: unknown;
  /** The resolved experiment configuration. */
  config: unknown;
  /** Extra run-specific values (linear eval: best top-1 …). */
  extra?: Record<string, unknown>;
  /** Last training loss (for the log). */
  loss?: number;
  /** Whether this checkpoint was written at the end of an epoch or by an interruption. */
  reason: 'epoch' | 'interrupt' | 'final';
}

export function encodeRunState(s: RunState): Record<string, string> {
  const m: Record<string, string> = {
    'run.format': CHECKPOINT_FORMAT,
    'run.kind': s.kind,
    'run.epoch': String(s.epoch),
    'run.batch': String(s.batch),
    'run.iteration': String(s.iteration),
    // String(number) round-trips a double exactly.
    'run.lr': String(s.lr),
    'run.itersPerEpoch': String(s.itersPerEpoch),
    'run.totalIterations': String(s.totalIterations),
    'run.batchSize': String(s.batchSize),
    'run.seed': String(s.seed),
    'run.reason': s.reason,
    'run.config': JSON.stringify(s.config),
    'run.savedAt': new Date().toISOString(),
  };
  if (s.data !== undefined) m['run.data'] = JSON.stringify(s.data);
  if (s.extra !== undefined) m['run.extra'] = JSON.stringify(s.extra);
  if (s.loss !== undefined) m['run.loss'] = String(s.loss);
  const cfg = s.config as { model?: unknown } | undefined;
  if (cfg && typeof cfg === 'object' && cfg.model !== undefined) m['run.model'] = JSON.stringify(cfg.model);
  return m;
}

export function decodeRunState(meta: Record<string, string>, file: string): RunState {
  const need = (k: string): string => {
    const v = meta[`${META_PREFIX}${k}`];
    if (v === undefined) throw new UserError(`${file} is not a momentum2-teacher run checkpoint (metadata run.${k} is missing)`);
    return v;
  };
  const num = (k: string): number => {
    const raw = need(k);
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) throw new UserError(`${file}: metadata run.${k} is not a number ('${raw}')`);
    return v;
  };
  // Positions and counts: exact non-negative integers (a negative iteration would read as "done").
  const count = (k: string, min = 0): number => {
    const v = num(k);
    if (!Number.isSafeInteger(v) || v < min) {
      throw new UserError(`${file}: metadata run.${k} must be an integer >= ${min}, got '${need(k)}'`);
    }
    return v;
  };
  const json = (k: string): unknown => {
    const v = meta[`${META_PREFIX}${k}`];
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v);
    } catch {
      throw new UserError(`${file}: metadata run.${k} is not valid JSON`);
    }
  };
  const nonNegative = (v: number, k: string): number => {
    if (v < 0) throw new UserError(`${file}: metadata run.${k} must be >= 0, got ${v}`);
    return v;
  };
  const kind = need('kind');
  if (kind !== 'pretrain' && kind !== 'linear_eval') throw new UserError(`${file}: unknown checkpoint kind '${kind}'`);
  return {
    kind,
    epoch: count('epoch'),
    batch: count('batch'),
    iteration: count('iteration'),
    lr: nonNegative(num('lr'), 'lr'),
    itersPerEpoch: count('itersPerEpoch', 1),
    totalIterations: count('totalIterations', 1),
    batchSize: count('batchSize', 1),
    seed: count('seed'),
    reason: (meta['run.reason'] as RunState['reason']) ?? 'epoch',
    config: json('config'),
    data: json('data'),
    extra: json('extra') as Record<string, unknown> | undefined,
    loss: meta['run.loss'] !== undefined ? Number(meta['run.loss']) : undefined,
  };
}

/** Reads only the JSON header of a safetensors file: its tensor table and metadata. */
export function readSafetensorsHeader(file: string): { metadata: Record<string, string>; tensors: Record<string, { dtype: string; shape: number[] }> } {
  checkRegularFile(file);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `checkpoint not found: ${file}` : `cannot open checkpoint ${file}: ${(e as Error).message}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const lenBuf = Buffer.alloc(8);
    if (size < 8 || fs.readSync(fd, lenBuf, 0, 8, 0) !== 8) throw new UserError(`${file} is not a safetensors file (too short)`);
    const len = Number(lenBuf.readBigUInt64LE(0));
    if (len <= 0 || len > 100 * 1024 * 1024 || 8 + len > size) throw new UserError(`${file} is not a safetensors file (bad header length)`);
    const hdr = Buffer.alloc(len);
    fs.readSync(fd, hdr, 0, len, 8);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(hdr.toString('utf8'));
    } catch {
      throw new UserError(`${file} is not a safetensors file (header is not JSON)`);
    }
    const { __metadata__, ...tensors } = parsed as { __metadata__?: Record<string, string> };
    return { metadata: __metadata__ ?? {}, tensors: tensors as Record<string, { dtype: string; shape: number[] }> };
  } finally {
    fs.closeSync(fd);
  }
}

/** A checkpoint must be a regular file: opening a named pipe or a device would block or read
 *  forever. Throws a UserError naming the file. */
export function checkRegularFile(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `checkpoint not found: ${file}` : `cannot open checkpoint ${file}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new UserError(`${file} is not a regular file (a checkpoint must be a file, not a ${st.isDirectory() ? 'folder' : st.isFIFO() ? 'named pipe' : 'device or socket'})`);
}

export function readRunState(file: string): RunState {
  return decodeRunState(readSafetensorsHeader(file).metadata, file);
}

/** The checkpoint to resume from in `dir`: the one with the most iterations (an interrupted
 *  mid-epoch checkpoint wins over the last epoch's when it is newer). */
export function newestCheckpoint(dir: string, kind: RunState['kind']): { file: string; state: RunState } | undefined {
  const found: { file: string; state: RunState }[] = [];
  for (const name of [FILES.lastEpoch, FILES.interrupted]) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    const state = readRunState(file);
    if (state.kind === kind) found.push({ file, state });
  }
  found.sort((a, b) => b.state.iteration - a.state.iteration);
  return found[0];
}

/** Atomic copy (temp file + rename). */
export function atomicCopy(src: string, dst: string): void {
  const tmp = `${dst}.tmp-${process.pid}`;
  fs.copyFileSync(src, tmp);
  fs.renameSync(tmp, dst);
}

/** Atomic text write (temp file + rename). */
export function atomicWrite(file: string, text: string): void {
  makeDirs(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

// Small pieces: devices, argv aliases, run-state metadata, safetensors headers, log formats.
import * as fs from 'fs';
import * as path from 'path';
import { FILES, decodeRunState, encodeRunState, newestCheckpoint, readRunState, readSafetensorsHeader, RunState } from '../lib/checkpoint';
import { normalizeArgv } from '../lib/cli/common';
import { checkDevices, parseDevices } from '../lib/devices';
import { formatConfig, formatEta, formatRemaining, MetricsWriter } from '../lib/logging';
import { permutation, syntheticPretrainSource } from '../lib/data/epoch-source';
import { pretrainBase } from '../lib/experiment';
import { tmpDir } from './helpers/dist';

describe('devices', () => {
  test('parses the reference forms', () => {
    expect(parseDevices('cpu')).toEqual({ kind: 'cpu' });
    expect(parseDevices('0-7')).toEqual({ kind: 'cuda', ids: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(parseDevices('0,2,5')).toEqual({ kind: 'cuda', ids: [0, 2, 5] });
    expect(parseDevices('3')).toEqual({ kind: 'cuda', ids: [3] });
    expect(parseDevices('0-1,4')).toEqual({ kind: 'cuda', ids: [0, 1, 4] });
    for (const bad of ['', 'gpu', '0,,1', '3-1', '-1']) expect(() => parseDevices(bad)).toThrow(/--devices/);
  });
  test('one device for now; a GPU needs the CUDA backend', () => {
    expect(checkDevices({ kind: 'cpu' }, 'training', false)).toEqual({ kind: 'cpu' });
    expect(() => checkDevices(parseDevices('0,1'), 'training', true)).toThrow(/multi-GPU training is not implemented yet/);
    expect(() => checkDevices(parseDevices('0'), 'training', false)).toThrow(/no CUDA backend; use -d cpu/);
    expect(checkDevices(parseDevices('0'), 'training', true)).toEqual({ kind: 'cuda', ids: [0] });
  });
});

test('argv: the reference spellings', () => {
  expect(normalizeArgv(['-expn', 'a', '-expn=b', '--exp-file', 'x.ts', '--exp-file=y.ts', '-f', 'z'])).toEqual([
    '--experiment-name', 'a', '--experiment-name=b', '--exp_file', 'x.ts', '--exp_file=y.ts', '-f', 'z',
  ]);
  expect(normalizeArgv(['--', '-expn'])).toEqual(['--', '-expn']);
});

/** A minimal safetensors writer (one float32 tensor + metadata). */
function writeSafetensors(file: string, metadata: Record<string, string>): void {
  const data = Buffer.from(new Float32Array([1, 2, 3]).buffer);
  const header = Buffer.from(JSON.stringify({ __metadata__: metadata, w: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(file, Buffer.concat([len, header, data]));
}

describe('checkpoint run state', () => {
  const state: RunState = {
    kind: 'pretrain',
    epoch: 3,
    batch: 7,
    iteration: 1234,
    lr: 0.1 + 0.2,
    itersPerEpoch: 409,
    totalIterations: 4090,
    batchSize: 256,
    seed: 5,
    data: { cursor: [1, 2] },
    config: pretrainBase.config,
    loss: 1.5,
    reason: 'interrupt',
  };
  test('round-trips exactly through safetensors metadata', () => {
    const dir = tmpDir();
    const f = path.join(dir, FILES.interrupted);
    writeSafetensors(f, { ...encodeRunState(state), 'm2t.state': '{}' });
    const back = readRunState(f);
    expect(back).toEqual(state);
    expect(back.lr).toBe(0.30000000000000004);
    expect(readSafetensorsHeader(f).metadata['run.model']).toBe(JSON.stringify(pretrainBase.config.model));
    // the newer (more iterations) of the two checkpoints wins
    writeSafetensors(path.join(dir, FILES.lastEpoch), encodeRunState({ ...state, iteration: 1227, batch: 0, reason: 'epoch' }));
    expect(newestCheckpoint(dir, 'pretrain')!.file).toBe(f);
    expect(newestCheckpoint(dir, 'linear_eval')).toBeUndefined();
  });
  test('clear errors for files that are not run checkpoints', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'x.safetensors');
    writeSafetensors(f, { format: 'other' });
    expect(() => readRunState(f)).toThrow(/is not a momentum2-teacher run checkpoint \(metadata run\.kind is missing\)/);
    fs.writeFileSync(path.join(dir, 'junk'), 'hello world, not a checkpoint');
    expect(() => readRunState(path.join(dir, 'junk'))).toThrow(/is not a safetensors file/);
    expect(() => readRunState(path.join(dir, 'none'))).toThrow(/checkpoint not found/);
    expect(() => decodeRunState({ 'run.kind': 'pretrain' }, 'f')).toThrow(/run\.epoch is missing/);
  });
});

describe('logs', () => {
  test('remaining time as the reference prints it', () => {
    expect(formatRemaining(0)).toBe('0d.00h.00m');
    expect(formatRemaining(90061)).toBe('1d.01h.01m');
    expect(formatRemaining(NaN)).toBe('0d.00h.00m');
    expect([5, 187, 7500, 100000].map(formatEta)).toEqual(['5s', '3m07s', '2h05m', '1d03h']);
  });
  test('config printing: one line per key', () => {
    expect(formatConfig({ a: 1, bb: { c: [1] } })).toBe('  a  : 1\n  bb : {"c":[1]}');
  });
  test('metrics.jsonl drops records past the resumed iteration', () => {
    const f = path.join(tmpDir(), 'metrics.jsonl');
    const w = new MetricsWriter(f);
    for (let i = 1; i <= 5; i++) w.write({ iteration: i });
    w.close();
    const w2 = new MetricsWriter(f, 3);
    w2.write({ iteration: 4, again: true });
    w2.close();
    expect(fs.readFileSync(f, 'utf8')).toBe('{"iteration":1}\n{"iteration":2}\n{"iteration":3}\n{"iteration":4,"again":true}\n');
  });
});

describe('synthetic source', () => {
  test('epochs are permutations, reproducible, resumable at any batch', async () => {
    const p = permutation(10, 1, 2);
    expect([...p].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(permutation(10, 1, 2)).toEqual(p);
    expect(permutation(10, 1, 3)).not.toEqual(p);
    const cfg = pretrainBase.config;
    const src = syntheticPretrainSource({
      dataset: { kind: 'synthetic', size: 20, numClasses: 2, imageSize: 8 },
      augmentation: cfg.data.augmentation,
      imageSize: 8,
      batchSize: 6,
      workers: 1,
      seed: 0,
      rank: 0,
      worldSize: 1,
    });
    expect(src.batchesPerEpoch).toBe(3);
    const all = [];
    for await (const b of src.batches(1)) all.push(b);
    const tail = [];
    for await (const b of src.batches(1, 2)) tail.push(b);
    expect(all).toHaveLength(3);
    expect(tail).toHaveLength(1);
    expect(tail[0].view1.data).toEqual(all[2].view1.data);
    expect(all[0].view1.shape).toEqual([6, 8, 8, 3]);
  });
});

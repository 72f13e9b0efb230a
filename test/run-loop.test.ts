// The rank context of the shared run loop (lib/run-loop.ts), decided once per run: defaults, the batch split,
// where each rank's checkpoints go, and the resume checks — without processes (a stand-in group).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { RunState } from '../lib/checkpoint';
import type { ProcessGroup } from '../lib/distributed/process-group';
import { localBatchSize, rankCheckpointDir, rankResume, runRanks } from '../lib/run-loop';

const group = (rank: number, worldSize: number) => ({ rank, worldSize }) as unknown as ProcessGroup;
const state = (worldSize?: number) => ({ extra: worldSize ? { worldSize } : undefined }) as RunState;

test('one process without a group: rank 0 of 1, the lead, whole batch, the run folder', () => {
  const r = runRanks();
  expect(r).toEqual({ rank: 0, worldSize: 1, lead: true, group: undefined });
  expect(localBatchSize(10, r)).toBe(10);
  expect(rankCheckpointDir('/o/run', r)).toBe('/o/run');
  expect(runRanks(group(0, 1)).group).toBeUndefined(); // a group of one needs no collectives
});

test('rank 1 of 4: a quarter of the batch, its own checkpoint folder; an uneven split is refused naming -b', () => {
  const r = runRanks(group(1, 4));
  expect(r).toMatchObject({ rank: 1, worldSize: 4, lead: false });
  expect(localBatchSize(256, r)).toBe(64);
  expect(() => localBatchSize(10, r)).toThrow('the batch size 10 (-b) is not divisible by the 4 processes of this run');
  expect(rankCheckpointDir('/o/run', r)).toBe(path.join('/o/run', 'ranks', 'rank1'));
});

test('resume: another world size is refused naming both; rank r > 0 needs its own copy', () => {
  expect(() => rankResume('/o/run/last.safetensors', state(2), runRanks(), '/o/run')).toThrow(
    /written by a run of 2 process\(es\), this one has 1; resume with the same number of processes/,
  );
  expect(() => rankResume('/o/run/last.safetensors', state(), runRanks(group(0, 2)), '/o/run')).toThrow(/a run of 1 process\(es\), this one has 2/);
  const lead = rankResume('/o/run/last.safetensors', state(2), runRanks(group(0, 2)), '/o/run');
  expect(lead.file).toBe('/o/run/last.safetensors');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-rl-'));
  try {
    expect(() => rankResume('/o/run/last.safetensors', state(2), runRanks(group(1, 2)), dir)).toThrow(
      /cannot resume rank 1: its checkpoint .*last\.safetensors is missing/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

import * as fs from 'fs';
import * as path from 'path';
import { makeSchedule, SchedulerName } from '../lib/schedules';

interface GoldenCase {
  name: string;
  scheduler: SchedulerName;
  lrBase: number;
  itersPerEpoch: number;
  totalEpochs: number;
  warmupEpochs?: number;
  warmupLr?: number;
  milestones?: number[];
  stepEpochs?: number;
  iters: number[];
  lr: number[];
}

const golden = JSON.parse(fs.readFileSync(path.join(__dirname, 'goldens', 'schedules.json'), 'utf8')) as { cases: GoldenCase[] };

describe('schedules match tools/golden/schedules.py (spec §5)', () => {
  test.each(golden.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const s = makeSchedule(c);
    expect(s.totalIters).toBe(c.itersPerEpoch * c.totalEpochs);
    c.iters.forEach((it, i) => {
      const want = c.lr[i];
      const got = s.lrAt(it);
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want)));
    });
  });
});

describe('schedule semantics', () => {
  test('warmcos starts at 1e-6, reaches lr_base at the end of warm-up, ends at 0', () => {
    const s = makeSchedule({ scheduler: 'warmcos', lrBase: 0.2, itersPerEpoch: 10, totalEpochs: 100, warmupEpochs: 10 });
    expect(s.lrAt(0)).toBe(1e-6);
    expect(s.lrAt(100)).toBeCloseTo(0.2, 12);
    expect(s.lrAt(1000)).toBeCloseTo(0, 12);
  });
  test('without warm-up the first step runs at lr_base', () => {
    for (const scheduler of ['cos', 'multistep', 'linear', 'step', 'warmcos'] as const) {
      const s = makeSchedule({ scheduler, lrBase: 0.3, itersPerEpoch: 5, totalEpochs: 9, warmupEpochs: 0, milestones: [3] });
      expect(s.lrAt(0)).toBeCloseTo(0.3, 15);
    }
  });
  test('linear decays to 0; step is multistep with evenly spaced milestones', () => {
    const lin = makeSchedule({ scheduler: 'linear', lrBase: 1, itersPerEpoch: 4, totalEpochs: 5 });
    expect(lin.lrAt(10)).toBeCloseTo(0.5, 15);
    expect(lin.lrAt(20)).toBe(0);
    const step = makeSchedule({ scheduler: 'step', lrBase: 1, itersPerEpoch: 2, totalEpochs: 9 });
    expect(step.config.stepEpochs).toBe(3);
    expect([0, 5, 6, 11, 12, 18].map((i) => step.lrAt(i))).toEqual([1, 1, 0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1]);
  });
  test('bad configurations are rejected clearly', () => {
    expect(() => makeSchedule({ scheduler: 'poly' as SchedulerName, lrBase: 1, itersPerEpoch: 1, totalEpochs: 1 })).toThrow(
      /unknown scheduler 'poly'/,
    );
    expect(() => makeSchedule({ scheduler: 'cos', lrBase: 1, itersPerEpoch: 0, totalEpochs: 1 })).toThrow(/at least one iteration per epoch/);
    expect(() => makeSchedule({ scheduler: 'warmcos', lrBase: 1, itersPerEpoch: 2, totalEpochs: 5, warmupEpochs: 5 })).toThrow(
      /warm-up \(5 epochs\) must be shorter/,
    );
  });
});

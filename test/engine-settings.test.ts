// One source of truth for engine settings: every key of native/core/engine_settings.json is
// accepted and rejected alike by the experiment schema and by the native engine (binding + core),
// at its defaults, its bounds and just beyond them.
import { Momentum2Teacher, type M2TConfig } from '../lib/engine';
import { engineSettings, settingSchema, type EngineSetting } from '../lib/engine-settings';
import { pretrainBase } from '../lib/experiment';

const small: M2TConfig = {
  arch: 'resnet18', width: 0.125, smallStem: true, hiddenDim: 16, outDim: 8, totalIterations: 10, threads: 1,
};
// Accepting these above their defaults would build a huge model: beyond the default, their range is
// checked by rejection only (the zod schema and the core's check still see every value).
const heavy = new Set(['width', 'hiddenDim', 'outDim']);

function inRange(s: EngineSetting, v: number): boolean {
  if (!Number.isFinite(v)) return false;
  if (s.min !== undefined && (s.minExclusive ? v <= s.min : v < s.min)) return false;
  if (s.max !== undefined && (s.maxExclusive ? v >= s.max : v > s.max)) return false;
  return s.type !== 'integer' || Number.isInteger(v);
}

function candidates(s: EngineSetting): unknown[] {
  switch (s.type) {
    case 'boolean': return [true, false, 'yes'];
    case 'enum': return [...(s.values ?? []), 'bogus'];
    case 'device': return ['cpu', 'gpu', 'cuda:x'];
    default: {
      const out: number[] = [Number.NaN];
      if (typeof s.default === 'number') out.push(s.default);
      for (const b of [s.min, s.max]) {
        if (b === undefined) continue;
        const eps = Math.max(Math.abs(b) * 1e-9, s.type === 'integer' ? 1 : 1e-12);
        out.push(b, b - eps, b + eps);
      }
      if (s.type === 'integer' && typeof s.default === 'number') out.push(s.default + 0.5);
      return out;
    }
  }
}

function expected(s: EngineSetting, v: unknown): boolean {
  if (s.type === 'boolean') return typeof v === 'boolean';
  if (s.type === 'enum') return (s.values ?? []).includes(v as string);
  if (s.type === 'device') return v === 'cpu';
  return typeof v === 'number' && inRange(s, v);
}

function nested(key: string, v: unknown): Record<string, unknown> {
  const parts = key.split('.');
  let o: Record<string, unknown> = { [parts[parts.length - 1]]: v };
  for (let i = parts.length - 2; i >= 0; i--) o = { [parts[i]]: o };
  return o;
}

function engineAccepts(key: string, v: unknown): boolean {
  const over = nested(key, v);
  const cfg = { ...small, ...over } as Record<string, unknown>;
  if (key.startsWith('optimizer.')) cfg.optimizer = { name: 'sgd', ...(over.optimizer as object) };
  try {
    new Momentum2Teacher(cfg as unknown as M2TConfig);
    return true;
  } catch (e) {
    // precision 'bf16' passed validation but this CPU has no bf16 convolution (test/precision.test.ts).
    return /needs a CPU with AVX512-BF16 or AMX/.test((e as Error).message);
  }
}

function experimentAccepts(path: string, v: unknown): boolean {
  try {
    pretrainBase.extend(nested(path, v) as never);
    return true;
  } catch {
    return false;
  }
}

describe('engine settings table', () => {
  test('the table is well-formed and every default lies in its range', () => {
    const keys = engineSettings().map((s) => s.key);
    expect(new Set(keys).size).toBe(keys.length);
    for (const s of engineSettings()) {
      expect(s.doc.length).toBeGreaterThan(10);
      if (typeof s.default === 'number') expect(inRange(s, s.default)).toBe(true);
      if (s.default === null) expect(s.required).toBe(true);
    }
  });

  for (const s of engineSettings()) {
    test(`${s.key}: schema, experiment and engine agree`, () => {
      for (const v of candidates(s)) {
        const want = expected(s, v);
        const what = `${s.key} = ${String(v)}`;
        expect([what, settingSchema(s.key).safeParse(v).success]).toEqual([what, want]);
        if (s.experiment) expect([what, experimentAccepts(s.experiment, v)]).toEqual([what, want]);
        if (want && heavy.has(s.key) && (v as number) > (s.default as number)) continue;
        if (s.key === 'arch' && want) continue; // every arch is built by other suites; a bogus one is rejected below
        expect([what, engineAccepts(s.key, v)]).toEqual([what, want]);
      }
      if (s.key === 'arch') expect(engineAccepts('arch', 'bogus')).toBe(false);
    });
  }

  test('the pretrain base takes its engine defaults from the table', () => {
    const get = (path: string) => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], pretrainBase.config);
    for (const s of engineSettings()) if (s.experiment && s.default !== null) expect([s.key, get(s.experiment)]).toEqual([s.key, s.default]);
  });

  test('momentum 1 is rejected by the experiment check, not after the dataset is opened', () => {
    expect(() => pretrainBase.extend({ optimizer: { momentum: 1 } })).toThrow(/optimizer\.momentum: must be in \[0, 1\)/);
  });
});

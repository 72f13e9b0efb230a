// The engine settings table (native/core/engine_settings.json), defined once for the C++ core, the
// binding and the experiment schema: names, types, defaults, ranges and doc strings. The schema of
// an engine key in an experiment is built here from its entry, so the experiment check, the
// binding and the core accept exactly the same values (test/engine-settings.test.ts walks them).
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { packageRoot } from './native';

export interface EngineSetting {
  key: string;
  type: 'number' | 'integer' | 'boolean' | 'enum' | 'device';
  default: number | boolean | string | null;
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  values?: string[];
  required?: boolean;
  /** The key's path in a pretrain experiment, when it has one. */
  experiment?: string;
  doc: string;
}

let table: EngineSetting[] | undefined;

/** Every engine setting, in table order. */
export function engineSettings(): EngineSetting[] {
  if (!table) {
    const file = path.join(packageRoot(), 'native', 'core', 'engine_settings.json');
    table = (JSON.parse(fs.readFileSync(file, 'utf8')) as { settings: EngineSetting[] }).settings;
  }
  return table;
}

export function engineSetting(key: string): EngineSetting {
  const s = engineSettings().find((e) => e.key === key);
  if (!s) throw new Error(`engine settings: no setting '${key}'`);
  return s;
}

/** The setting's default (throws for a required setting, which has none). */
export function settingDefault<T extends number | boolean | string>(key: string): T {
  const s = engineSetting(key);
  if (s.default === null) throw new Error(`engine settings: '${key}' has no default`);
  return s.default as T;
}

function fmt(n: number): string {
  return Number.isInteger(n) && Math.abs(n) >= 2 ** 20 ? `2^${Math.log2(n)}` : String(n);
}

/** The range as text, e.g. "[0, 1)". */
export function rangeText(s: EngineSetting): string {
  const lo = s.min === undefined ? '(-inf' : `${s.minExclusive ? '(' : '['}${fmt(s.min)}`;
  const hi = s.max === undefined ? 'inf)' : `${fmt(s.max)}${s.maxExclusive ? ')' : ']'}`;
  return `${lo}, ${hi}`;
}

/** The zod schema of one setting, with the table's type and range (and its doc as description). */
export function settingSchema(key: string): z.ZodTypeAny {
  const s = engineSetting(key);
  let schema: z.ZodTypeAny;
  switch (s.type) {
    case 'boolean':
      schema = z.boolean();
      break;
    case 'enum':
      schema = z.enum(s.values as [string, ...string[]]);
      break;
    case 'device':
      schema = z.string().regex(/^(cpu|cuda:\d{1,4})$/, "expected 'cpu' or 'cuda:N'");
      break;
    default: {
      let n = s.type === 'integer' ? z.number().int() : z.number();
      const msg = `must be in ${rangeText(s)}`;
      if (s.min !== undefined) n = s.minExclusive ? n.gt(s.min, msg) : n.gte(s.min, msg);
      if (s.max !== undefined) n = s.maxExclusive ? n.lt(s.max, msg) : n.lte(s.max, msg);
      schema = n;
    }
  }
  return schema.describe(s.doc);
}

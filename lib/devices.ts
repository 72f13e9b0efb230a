// The -d/--devices flag: "0-7", "0,2,5", "3" or "cpu".
import { UserError } from './errors';

/** Highest device id accepted (no machine has more GPUs than this). */
export const MAX_DEVICE_ID = 1023;

export type DeviceSpec = { kind: 'cpu' } | { kind: 'cuda'; ids: number[] };

export function parseDevices(text: string): DeviceSpec {
  const s = text.trim().toLowerCase();
  if (s === 'cpu') return { kind: 'cpu' };
  const bad = () =>
    new UserError(`invalid --devices '${text}' (expected GPU ids such as 0-7, 0,2,5 or 3, or 'cpu')`);
  if (!/^[0-9,\-\s]+$/.test(s)) throw bad();
  const seen = new Set<number>();
  for (const part of s.split(',').map((p) => p.trim())) {
    if (part === '') throw bad();
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw bad();
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a) throw new UserError(`invalid --devices '${text}': range ${part} runs backwards`);
    // Bounded before expanding: a range such as 0-100000000 must not take minutes (or memory).
    if (b > MAX_DEVICE_ID) throw new UserError(`invalid --devices '${text}': device id ${b} is above ${MAX_DEVICE_ID}`);
    for (let i = a; i <= b; i++) seen.add(i);
  }
  return { kind: 'cuda', ids: [...seen] };
}

export function describeDevices(d: DeviceSpec): string {
  return d.kind === 'cpu' ? 'cpu' : d.ids.map((i) => `cuda:${i}`).join(',');
}

/** One engine device: what `device` in an engine config takes. */
export type EngineDevice = 'cpu' | `cuda:${number}`;

/** The single engine device of a (checked) device request: 'cpu' or 'cuda:N'. */
export function engineDevice(d: DeviceSpec): EngineDevice {
  return d.kind === 'cpu' ? 'cpu' : `cuda:${d.ids[0]}`;
}

/** Whether the loaded engine was built with its CUDA backend (its backends() lists a cuda device). */
export function cudaBackendBuilt(addonModule?: Record<string, unknown>): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const a = addonModule ?? (require('./native') as typeof import('./native')).addon();
    const backends = a.backends;
    const isCuda = (n: string) => n === 'cuda' || n.startsWith('cuda:');
    if (typeof backends === 'function') return (backends() as string[]).some(isCuda);
    if (Array.isArray(backends)) return (backends as string[]).some(isCuda);
    if (typeof a.cudaAvailable === 'function') return Boolean(a.cudaAvailable());
    return false;
  } catch {
    return false;
  }
}

/** Checks a device request against what this build can do; returns the single device to use. */
export function checkDevices(d: DeviceSpec, what: 'training' | 'linear evaluation', hasCuda = cudaBackendBuilt()): DeviceSpec {
  if (d.kind === 'cuda') {
    if (d.ids.length > 1) {
      throw new UserError(
        `--devices asks for ${d.ids.length} GPUs (${d.ids.join(',')}), but multi-GPU ${what} is not implemented yet; ` +
          `use a single device (-d ${d.ids[0]}), or -d cpu${what === 'training' ? ' (with --nproc N for several CPU processes)' : ''}`,
      );
    }
    if (!hasCuda) {
      throw new UserError(
        `--devices ${d.ids[0]} asks for GPU ${d.ids[0]}, but this build of momentum2-teacher has no CUDA backend; use -d cpu`,
      );
    }
  }
  return d;
}

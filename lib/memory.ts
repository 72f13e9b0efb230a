// Memory report lines: the engine's plan by category (Momentum2Teacher.memoryBreakdown()), what its
// allocator measured, and this process's resident memory.
import * as fs from 'fs';
import type { MemoryBreakdown } from './engine';

export function formatBytes(b: number): string {
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(2)} GiB`;
  if (b >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  return `${(b / 1024).toFixed(1)} KiB`;
}

/** Resident memory of this process now and at its peak (VmRSS, VmHWM of /proc/self/status); undefined off Linux. */
export function processMemory(): { rss: number; peakRss: number } | undefined {
  let status: string;
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const rss = kb('VmRSS'), peakRss = kb('VmHWM');
  return rss === undefined || peakRss === undefined ? undefined : { rss, peakRss };
}

/** One line: planned total, measured allocator peak, workspaces, process peak RSS; with `verbose` the plan by category
 *  and the bytes each image of the batch adds. */
export function formatMemory(m: MemoryBreakdown, opts: { verbose?: boolean } = {}, proc = processMemory()): string {
  const p = m.planned, f = formatBytes;
  const batch = p.batch.n > 0 ? ` at batch ${p.batch.n} ${p.batch.h}x${p.batch.w}` : '';
  let line = `Memory: planned ${f(p.total)}${batch}`;
  if (m.measured.peakInUse !== undefined) line += `, allocator peak ${f(m.measured.peakInUse)}`;
  line += `, workspaces ${f(m.measured.workspaces)}`;
  if (proc) line += `, process peak RSS ${f(proc.peakRss)}`;
  if (opts.verbose) {
    line +=
      ` (parameters ${f(p.parameters)}, gradients ${f(p.gradients)}, optimizer ${f(p.optimizer)}, ` +
      `teacher ${f(p.teacher)}, activations ${f(p.activations)} = ${f(p.activationsPerImage)}/image)`;
  }
  return line;
}

/** formatMemory of a model that reports its memory (Momentum2Teacher); undefined for one that does not. */
export function memoryLine(model: object, verbose = false): string | undefined {
  const m = model as { memoryBreakdown?: () => MemoryBreakdown };
  return typeof m.memoryBreakdown === 'function' ? formatMemory(m.memoryBreakdown(), { verbose }) : undefined;
}

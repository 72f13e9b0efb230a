// Run logs (train_log.txt / eval_log.txt), metrics.jsonl, and console progress.
import * as fs from 'fs';
import * as path from 'path';

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** "2024-05-01 12:34:56", local time, as the reference's loguru logger prints it. */
export function timestamp(d = new Date()): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The reference's remaining-time format: "1d.02h.03m". */
export function formatRemaining(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const totalMin = Math.floor(seconds / 60);
  const m = totalMin % 60;
  const totalH = Math.floor(totalMin / 60);
  const h = totalH % 24;
  const d = Math.floor(totalH / 24);
  return `${d}d.${pad(h)}h.${pad(m)}m`;
}

/** A short ETA for the progress bar: "42s", "3m07s", "2h05m", "1d04h". */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** Python's "{:.Nf}". */
export function fixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  return x.toFixed(digits);
}

export type LogLevel = 'INFO' | 'WARNING' | 'ERROR';
export type LogSink = (line: string, level: LogLevel, message: string) => void;

/** A configuration as one line per top-level key (nested values as compact JSON). */
export function formatConfig(cfg: object): string {
  const entries = Object.entries(cfg);
  const w = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `  ${k.padEnd(w)} : ${JSON.stringify(v)}`).join('\n');
}

/** Appends timestamped lines to a log file and forwards them to sinks (console, events). */
export class RunLogger {
  private fd: number | undefined;
  private readonly sinks: LogSink[] = [];

  constructor(readonly file?: string) {
    if (file) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      this.fd = fs.openSync(file, 'a');
    }
  }

  addSink(sink: LogSink): void {
    this.sinks.push(sink);
  }

  log(level: LogLevel, message: string): void {
    const lines = message.split('\n');
    for (const msg of lines) {
      const line = `${timestamp()} | ${level.padEnd(7)} | ${msg}`;
      if (this.fd !== undefined) fs.writeSync(this.fd, line + '\n');
      for (const s of this.sinks) s(line, level, msg);
    }
  }

  info(message: string): void {
    this.log('INFO', message);
  }
  warn(message: string): void {
    this.log('WARNING', message);
  }
  error(message: string): void {
    this.log('ERROR', message);
  }

  close(): void {
    if (this.fd !== undefined) {
      fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }
}

export interface MetricsOptions {
  /** Also keep `<name>.csv` beside the JSON lines (same rows, one column per key). Default true. */
  csv?: boolean;
  /** Also write TensorBoard scalars (step = `iteration`) into this folder; false for none.
   *  Default: `tensorboard/` beside the metrics file. */
  tensorboard?: string | false;
}

/** A CSV cell: numbers as JavaScript prints them (round-trips), text quoted when needed. */
function csvCell(v: unknown): string {
  if (v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v))) return ''; // as JSON lines store them (null)
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The numeric fields of a record TensorBoard plots (the step and position keys are not series). */
function scalarsOf(rec: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(rec)) if (typeof v === 'number' && k !== 'iteration' && k !== 'batch') out[k] = v;
  return out;
}

/** metrics.jsonl: one JSON object per line, appended; plus metrics.csv (the same rows) and
 *  TensorBoard scalars, so spreadsheets, pandas and TensorBoard read a run as it goes. */
export class MetricsWriter {
  private fd: number;
  private buffer: Record<string, unknown>[] = [];
  readonly csvFile: string | undefined;
  private csvColumns: string[] = [];
  private csvFd: number | undefined;
  private events: import('./tensorboard').EventWriter | undefined;

  /** Opens `file` for appending; with `keepUpTo`, first drops records whose `iteration` is
   *  larger (a resumed run rewrites the iterations after its checkpoint). */
  constructor(readonly file: string, keepUpTo?: number, o: MetricsOptions = {}) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (keepUpTo !== undefined && fs.existsSync(file)) {
      const kept = fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => {
          if (!l.trim()) return false;
          try {
            const rec = JSON.parse(l) as { iteration?: number };
            return rec.iteration === undefined || rec.iteration <= keepUpTo;
          } catch {
            return false;
          }
        });
      fs.writeFileSync(file, kept.length ? kept.join('\n') + '\n' : '');
    }
    this.fd = fs.openSync(file, 'a');
    if (o.csv ?? true) {
      this.csvFile = file.replace(/\.jsonl$/, '') + '.csv';
      this.rebuildCsv();
    }
    const tb = o.tensorboard === undefined ? path.join(path.dirname(file), 'tensorboard') : o.tensorboard;
    if (tb !== false) {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { EventWriter } = require('./tensorboard') as typeof import('./tensorboard');
      // A resumed run writes a new events file from its checkpoint's step on; TensorBoard drops the
      // older file's points past that step (its out-of-order purge).
      this.events = new EventWriter(tb);
    }
  }

  /** Rewrites the CSV from the JSON lines: at start and whenever a record brings a new key. */
  private rebuildCsv(): void {
    if (!this.csvFile) return;
    const rows: Record<string, unknown>[] = [];
    for (const l of fs.readFileSync(this.file, 'utf8').split('\n')) {
      if (!l.trim()) continue;
      try {
        rows.push(JSON.parse(l));
      } catch {
        /* a torn last line of a killed run */
      }
    }
    const cols: string[] = [];
    const seen = new Set<string>();
    for (const r of rows) for (const k of Object.keys(r)) if (!seen.has(k)) (seen.add(k), cols.push(k));
    this.csvColumns = cols;
    const text = cols.length ? [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n' : '';
    if (this.csvFd !== undefined) fs.closeSync(this.csvFd);
    const tmp = `${this.csvFile}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, this.csvFile);
    this.csvFd = fs.openSync(this.csvFile, 'a');
  }

  write(record: Record<string, unknown>): void {
    this.buffer.push(record);
    if (this.events) {
      const step = typeof record.iteration === 'number' ? record.iteration : 0;
      this.events.scalars(step, scalarsOf(record));
    }
    if (this.buffer.length >= 50) this.flush();
  }

  flush(): void {
    if (!this.buffer.length) return;
    fs.writeSync(this.fd, this.buffer.map((r) => JSON.stringify(r)).join('\n') + '\n');
    if (this.csvFile) {
      const known = new Set(this.csvColumns);
      if (this.buffer.some((r) => Object.keys(r).some((k) => !known.has(k)))) this.rebuildCsv();
      else fs.writeSync(this.csvFd!, this.buffer.map((r) => this.csvColumns.map((c) => csvCell(r[c])).join(',')).join('\n') + '\n');
    }
    this.buffer = [];
    this.events?.flush();
  }

  close(): void {
    this.flush();
    fs.closeSync(this.fd);
    if (this.csvFd !== undefined) fs.closeSync(this.csvFd);
    this.csvFd = undefined;
    this.events?.close();
    this.events = undefined;
  }
}

/** Mean of the last `n` values. */
export class Meter {
  private values: number[] = [];
  private sum = 0;
  constructor(readonly window = 50) {}
  add(v: number): void {
    this.values.push(v);
    this.sum += v;
    if (this.values.length > this.window) this.sum -= this.values.shift()!;
  }
  get mean(): number {
    return this.values.length ? this.sum / this.values.length : 0;
  }
  get count(): number {
    return this.values.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Console progress
// ---------------------------------------------------------------------------------------------

export interface ProgressState {
  /** Iterations done in this phase (e.g. this run). */
  value: number;
  total: number;
  epoch: number;
  maxEpoch: number;
  imagesPerSec: number;
  etaSeconds: number;
  extra?: string;
}

/** Where console output goes: a progress bar on a terminal, plain lines otherwise. */
export interface ConsoleReporter {
  /** A finished log line (already timestamped). */
  line(text: string): void;
  progress(state: ProgressState): void;
  stop(): void;
}

export class PlainReporter implements ConsoleReporter {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}
  line(text: string): void {
    this.out.write(text + '\n');
  }
  progress(): void {}
  stop(): void {}
}

export class SilentReporter implements ConsoleReporter {
  line(): void {}
  progress(): void {}
  stop(): void {}
}

/** A cli-progress bar (on stderr) with ETA and images/s; log lines print above it. */
export class BarReporter implements ConsoleReporter {
  private multibar: import('cli-progress').MultiBar | undefined;
  private bar: import('cli-progress').SingleBar | undefined;

  constructor(private readonly label: string, private readonly forced = false) {}

  private ensure(state: ProgressState): void {
    if (this.bar) return;
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const cliProgress = require('cli-progress') as typeof import('cli-progress');
    this.multibar = new cliProgress.MultiBar(
      {
        format: `${this.label} {bar} {percentage}% | it {value}/{total} | epoch {epoch}/{maxEpoch} | {ips} img/s | ETA {eta_fmt}{extra}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        etaBuffer: 50,
        fps: 5,
        stream: process.stderr,
        forceRedraw: false,
        // Forced (--progress bar) on something that is not a terminal: still draw, now and then.
        noTTYOutput: this.forced && !process.stderr.isTTY,
        notTTYSchedule: 2000,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.multibar.create(state.total, state.value, this.payload(state));
  }

  private payload(s: ProgressState): Record<string, string | number> {
    return {
      epoch: s.epoch,
      maxEpoch: s.maxEpoch,
      ips: fixed(s.imagesPerSec, 1),
      eta_fmt: formatEta(s.etaSeconds),
      extra: s.extra ? ` | ${s.extra}` : '',
    };
  }

  line(text: string): void {
    if (this.multibar) this.multibar.log(text + '\n');
    else process.stdout.write(text + '\n');
  }

  progress(state: ProgressState): void {
    this.ensure(state);
    this.bar!.setTotal(state.total);
    this.bar!.update(state.value, this.payload(state));
  }

  stop(): void {
    this.multibar?.stop();
    this.multibar = undefined;
    this.bar = undefined;
  }
}

/** A bar when stderr is a terminal (and not disabled), plain lines otherwise. */
export function consoleReporter(label: string, mode: 'auto' | 'bar' | 'plain' | 'silent' = 'auto'): ConsoleReporter {
  if (mode === 'silent') return new SilentReporter();
  if (mode === 'bar') return new BarReporter(label, true);
  if (mode === 'auto' && process.stderr.isTTY && !process.env.CI) return new BarReporter(label);
  return new PlainReporter();
}

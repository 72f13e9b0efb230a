// One run per output folder: a lock file holding the owner's pid and host, created atomically
// (written to a temp file, then hard-linked into place, so a reader never sees it half written).
// A lock whose pid is dead on this host is stale (a run killed with -9) and is taken over.
// Also: the safe creation of output folders, and the removal of checkpoint temp files that
// killed runs left behind.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from './errors';

export const LOCK_FILE = '.mt-run.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

/** Whether `pid` names a live process on this host. */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): LockInfo | undefined {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    return typeof v.pid === 'number' && typeof v.host === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface RunLock {
  readonly file: string;
  release(): void;
}

/** Locks `dir` (which must exist) for this process, or throws a UserError naming the run that
 *  holds it. */
export function lockRunFolder(dir: string, what = 'run'): RunLock {
  const file = path.join(dir, LOCK_FILE);
  const me: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(me) + '\n');
  } catch (e) {
    throw new UserError(`cannot lock ${dir} for this ${what}: ${(e as Error).message}`);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw e;
      }
      const held = readLock(file);
      const stale = held ? held.host === me.host && held.pid !== process.pid && !pidAlive(held.pid) : lockAgeMs(file) > 10_000;
      if (!stale) {
        const who = held ? `pid ${held.pid} on ${held.host}, started ${held.started}` : 'a process that is still writing its lock';
        throw new UserError(
          `${dir} is in use by another ${what} (${who}); wait for it to finish or choose another --experiment-name/--output-dir ` +
            `(if that process is gone, delete ${file})`,
        );
      }
      fs.rmSync(file, { force: true });
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { file, release };
}

function lockAgeMs(file: string): number {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return Infinity;
  }
}

/** Removes `<name>.tmp-<pid>` files (checkpoint and text temp files) whose writer is dead;
 *  returns their names. Only called by the holder of the folder's lock. */
export function removeStaleTempFiles(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = /\.tmp-(\d+)$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    try {
      fs.rmSync(path.join(dir, name), { force: true });
      removed.push(name);
    } catch {
      // not ours to remove (permissions): leave it
    }
  }
  return removed;
}

/** mkdir -p that cannot hang: creates each missing level itself and stops with a one-line error
 *  naming the folder (Node's recursive mkdir loops forever under /proc). */
export function makeDirs(dir: string, flag = '--output-dir'): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let p = abs;
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cannot create ${dir} (${flag}): ${(e as Error).message}`);
    }
    if (st) {
      if (!st.isDirectory()) throw new UserError(`cannot create ${dir} (${flag}): ${p} is not a folder`);
      break;
    }
    missing.push(p);
    const up = path.dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(d).isDirectory()) continue;
      throw new UserError(`cannot create ${dir} (${flag}): ${(e as Error).message}`);
    }
  }
}

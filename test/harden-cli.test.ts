// Issue 13, findings 4–8 as a user meets them: the run-folder lock, hangs (device ranges,
// /proc output folders, named pipes), path-like experiment names, unsafe seeds, bad checkpoint
// metadata, stale temp files, a checkpoint of another encoder, non-finite state.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeRunState, encodeRunState, FILES, readRunState, RunState } from '../lib/checkpoint';
import { parseDevices } from '../lib/devices';
import { LOCK_FILE, lockRunFolder, makeDirs, removeStaleTempFiles } from '../lib/run-lock';
import { requireDist, runCli, tmpDir, writeFile } from './helpers/dist';
import { tinyEval, tinyPretrain } from './helpers/fixtures';

const made: string[] = [];
const mk = (prefix: string) => {
  const d = tmpDir(prefix);
  made.push(d);
  return d;
};
afterAll(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

beforeAll(() => requireDist(['bin/mt-train.js', 'bin/mt-eval.js']));

/** A pid that is certainly dead: a child that has exited and been reaped. */
function deadPid(): number {
  return Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }));
}

describe('run-folder lock', () => {
  test('a second lock on a folder is refused naming the holder; release frees it', () => {
    const dir = mk('m2t-lock-');
    const a = lockRunFolder(dir, 'mt-train run');
    expect(() => lockRunFolder(dir, 'mt-train run')).toThrow(new RegExp(`^${dir.replace(/[/.]/g, '\\$&')} is in use by another mt-train run \\(pid ${process.pid} on ${os.hostname()}`));
    a.release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    lockRunFolder(dir).release();
  });

  test('a lock left by a dead process on this host is stale and taken over; one on another host is not', () => {
    const dir = mk('m2t-lock-');
    const file = path.join(dir, LOCK_FILE);
    fs.writeFileSync(file, JSON.stringify({ pid: deadPid(), host: os.hostname(), started: 'then', command: 'x' }));
    const l = lockRunFolder(dir);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).pid).toBe(process.pid);
    l.release();
    fs.writeFileSync(file, JSON.stringify({ pid: deadPid(), host: 'elsewhere.example', started: 'then', command: 'x' }));
    expect(() => lockRunFolder(dir)).toThrow(/in use by another run \(pid \d+ on elsewhere\.example/);
  });

  test('mt-train refuses an output folder another live run holds, also with --resume', () => {
    const dir = mk('m2t-lock-cli-');
    const exp = tinyPretrain(dir, { maxEpoch: 2, size: 16 });
    const out = path.join(dir, 'out');
    const run = path.join(out, 'tiny_pretrain');
    fs.mkdirSync(run, { recursive: true });
    // A live process (this one's parent jest worker is alive: use our own pid) holds the folder.
    fs.writeFileSync(path.join(run, LOCK_FILE), JSON.stringify({ pid: process.pid, host: os.hostname(), started: 'now', command: 'other' }));
    for (const extra of [[], ['--resume']]) {
      const r = runCli('mt-train', ['-f', exp, '--output-dir', out, '--progress', 'none', ...extra]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`mt-train: error: .*tiny_pretrain is in use by another mt-train run \\(pid ${process.pid} on `));
      expect(fs.readdirSync(run)).toEqual([LOCK_FILE]);
    }
  });
});

describe('stale checkpoint temp files', () => {
  test('files of dead writers go, those of live ones and other files stay', () => {
    const dir = mk('m2t-tmp-');
    const dead = deadPid();
    for (const n of [`last_epoch_ckpt.safetensors.tmp-${dead}`, `config.json.tmp-${dead}`, `x.tmp-${process.pid}`, `last_epoch_ckpt.safetensors`, 'notes.tmp-abc'])
      fs.writeFileSync(path.join(dir, n), 'x');
    expect(removeStaleTempFiles(dir).sort()).toEqual([`config.json.tmp-${dead}`, `last_epoch_ckpt.safetensors.tmp-${dead}`]);
    expect(fs.readdirSync(dir).sort()).toEqual(['last_epoch_ckpt.safetensors', 'notes.tmp-abc', `x.tmp-${process.pid}`]);
  });
});

describe('no hangs', () => {
  test('-d 0-100000000 is refused at once', () => {
    const t = Date.now();
    expect(() => parseDevices('0-100000000')).toThrow(/device id 100000000 is above 1023/);
    expect(Date.now() - t).toBeLessThan(100);
    expect(parseDevices('0-3,2,7')).toEqual({ kind: 'cuda', ids: [0, 1, 2, 3, 7] });
  });

  test('an output folder that cannot be created (/proc/x) is an error, not a hang', () => {
    expect(() => makeDirs('/proc/m2t-x/y')).toThrow(/^cannot create \/proc\/m2t-x\/y \(--output-dir\): ENOENT/);
    const dir = mk('m2t-mk-');
    writeFile(path.join(dir, 'file'), 'x');
    expect(() => makeDirs(path.join(dir, 'file', 'sub'))).toThrow(/cannot create .*file\/sub \(--output-dir\): ENOTDIR/);
    makeDirs(path.join(dir, 'a', 'b', 'c'));
    expect(fs.statSync(path.join(dir, 'a', 'b', 'c')).isDirectory()).toBe(true);
    const exp = tinyPretrain(dir, { maxEpoch: 2, size: 16 });
    const r = runCli('mt-train', ['-f', exp, '--output-dir', '/proc/m2t-x', '--progress', 'none'], { timeout: 60_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/mt-train: error: cannot create \/proc\/m2t-x\/tiny_pretrain \(--output-dir\)/);
  });

  test('a named pipe as a checkpoint is refused, not read forever', () => {
    const dir = mk('m2t-fifo-');
    const fifo = path.join(dir, 'ckpt.safetensors');
    execFileSync('mkfifo', [fifo]);
    expect(() => readRunState(fifo)).toThrow(/ckpt\.safetensors is not a regular file \(a checkpoint must be a file, not a named pipe\)/);
    const exp = tinyPretrain(dir, { maxEpoch: 2, size: 16 });
    const r = runCli('mt-train', ['-f', exp, '--output-dir', path.join(dir, 'o'), '--resume', fifo, '--progress', 'none'], { timeout: 60_000 });
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(/not a regular file/);
    const e = runCli('mt-eval', ['-f', tinyEval(dir), '-expn', 'x', '--output-dir', path.join(dir, 'o'), '--pretrained', fifo, '--progress', 'none'], { timeout: 60_000 });
    expect(e.signal).toBeNull();
    expect(e.stderr).toMatch(/not a regular file/);
  });
});

describe('flags and names', () => {
  test.each(['..', '.', 'a/b'])('--experiment-name %s is refused', (name) => {
    const r = runCli('mt-train', ['--experiment-name', name, '--dry-run']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/name: must not (be '\.' or '\.\.'|contain path separators)/);
  });
  test('a seed above 2^53 - 1 is refused, not rounded', () => {
    const r = runCli('mt-train', ['--seed', '9007199254740993', '--dry-run']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--seed must be at most 2\^53 - 1 = 9007199254740991, got '9007199254740993'/);
    expect(JSON.parse(runCli('mt-train', ['--seed', '9007199254740991', '--dry-run']).stdout).seed).toBe(9007199254740991);
  });
});

describe('checkpoint metadata', () => {
  const state: RunState = { kind: 'pretrain', epoch: 1, batch: 0, iteration: 4, lr: 0.1, itersPerEpoch: 4, totalIterations: 8, batchSize: 8, seed: 0, config: {}, reason: 'epoch' };
  test.each([
    ['iteration', '-3', /run\.iteration must be an integer >= 0, got '-3'/],
    ['iteration', '2.5', /run\.iteration must be an integer >= 0, got '2\.5'/],
    ['epoch', '', /run\.epoch is not a number \(''\)/],
    ['batchSize', '0', /run\.batchSize must be an integer >= 1/],
    ['seed', '1e300', /run\.seed must be an integer/],
    ['lr', '-1', /run\.lr must be >= 0/],
  ])('run.%s = %j is refused naming the file and the key', (key, value, re) => {
    const meta = { ...encodeRunState(state), [`run.${key}`]: value };
    expect(() => decodeRunState(meta, 'f.safetensors')).toThrow(re);
    expect(() => decodeRunState(meta, 'f.safetensors')).toThrow(/^f\.safetensors: /);
  });
});

describe('mt-eval on a checkpoint that disagrees with the experiment', () => {
  test('run.model metadata of another arch/width is an error naming the keys', () => {
    const dir = mk('m2t-meta-');
    const out = path.join(dir, 'o');
    const exp = tinyPretrain(dir, { maxEpoch: 2, size: 16 });
    const t = runCli('mt-train', ['-f', exp, '--output-dir', out, '--progress', 'none']);
    expect(t.status).toBe(0);
    const ev = writeFile(
      path.join(dir, 'ev.ts'),
      fs.readFileSync(tinyEval(dir), 'utf8').replace('batchSize: 8,', "batchSize: 8,\n  model: { arch: 'resnet34', width: 0.25, smallStem: true },"),
    );
    const r = runCli('mt-eval', ['-f', ev, '-expn', 'tiny_pretrain', '--output-dir', out, '--progress', 'none']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/last_epoch_ckpt\.safetensors holds a different encoder than the experiment's model: arch "resnet18" in its run\.model metadata, "resnet34" in the experiment; width 0\.125 in its run\.model metadata, 0\.25 in the experiment/);
    expect(readRunState(path.join(out, 'tiny_pretrain', FILES.lastEpoch)).iteration).toBe(4);
  });

  test("a checkpoint whose run.model is a ResNet-152 at width 16 is refused by the memory estimate", () => {
    const dir = mk('m2t-meta-');
    const out = path.join(dir, 'o');
    expect(runCli('mt-train', ['-f', tinyPretrain(dir, { maxEpoch: 2, size: 16 }), '--output-dir', out, '--progress', 'none']).status).toBe(0);
    const file = path.join(out, 'tiny_pretrain', FILES.lastEpoch);
    // Rewrite the header's run.model (data offsets are relative to the data: the tensors stay).
    const buf = fs.readFileSync(file);
    const len = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
    header.__metadata__['run.model'] = JSON.stringify({ arch: 'resnet152', width: 16, smallStem: false, hiddenDim: 4096, outDim: 256 });
    const h = Buffer.from(JSON.stringify(header));
    const lb = Buffer.alloc(8);
    lb.writeBigUInt64LE(BigInt(h.length));
    fs.writeFileSync(file, Buffer.concat([lb, h, buf.subarray(8 + len)]));
    const t = Date.now();
    const r = runCli('mt-eval', ['-f', tinyEval(dir), '-expn', 'tiny_pretrain', '--output-dir', out, '--progress', 'none'], { timeout: 120_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/mt-eval: error: cannot build the encoder resnet152 \(width 16\) for .*last_epoch_ckpt\.safetensors: LinearProbe: needs about [\d.]+ GiB .* but only [\d.]+ GiB is available/);
    expect(Date.now() - t).toBeLessThan(60_000);
  });
});

// Standing guard (issue 13): ≥ 10,000 random N-API calls over every exported class, method and
// function, fixed seed, in a child process so that a crash (abort, segfault, sanitizer report)
// shows as its exit status. Every call must end in a return value or a JS Error with a one-line
// message. M2T_MEMORY_AVAILABLE keeps random model sizes from allocating gigabytes.
import { spawnSync } from 'child_process';
import * as path from 'path';

test('10,000 random calls: 0 crashes, every failure a one-line JS Error', () => {
  const child = path.join(__dirname, 'helpers', 'napi-fuzz-child.js');
  // ulimit -v: an allocation gone wild fails in the child (bad_alloc → a JS Error, or an abort
  // the test sees) instead of calling the machine's OOM killer. Not under ASan (npm run
  // test:asan), which reserves terabytes of shadow address space and has its own allocator limit.
  const limit = /asan/.test(process.env.LD_PRELOAD ?? '') ? '' : 'ulimit -v 8000000 && ';
  const r = spawnSync('bash', ['-c', `${limit}exec "$0" "$@"`, process.execPath, '--expose-gc', child, '10000', '20260101'], {
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, M2T_MEMORY_AVAILABLE: String(300 * 2 ** 20) },
  });
  expect(r.signal).toBeNull();
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const c = JSON.parse(r.stdout.trim());
  console.log(`N-API fuzz: ${JSON.stringify(c)}`);
  expect(c.calls).toBe(10000);
  expect(c.targets).toBe(51); // 5 classes (constructors + 38 methods) and 8 functions
  expect(c.defects).toEqual([]);
  expect(c.nonError + c.badMessage + c.timedOut).toBe(0);
  // The mutations reach past argument checking: a good share of calls succeed.
  expect(c.ok).toBeGreaterThan(2000);
});

// Issue 13, finding 1: an object garbage-collected while its async call (step/save/load,
// features, openIdx) runs must stay alive until the call settles. The child collects garbage
// under running work; the FinalizationRegistry tells whether any object died too early.
import { spawnSync } from 'child_process';
import * as path from 'path';

test('objects outlive their pending async calls (no use-after-free under global.gc())', () => {
  const child = path.join(__dirname, 'helpers', 'lifetime-child.js');
  const r = spawnSync(process.execPath, ['--expose-gc', child, '12'], { encoding: 'utf8', timeout: 300_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout.trim());
  expect(out.calls).toBe(60);
  expect(out.early).toBe(0);
});

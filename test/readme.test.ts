// The README's programmatic example runs as written (with 'momentum2-teacher' pointing at lib/).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { addonBuilt } from './helpers/dist';

const ROOT = path.join(__dirname, '..');
const maybe = addonBuilt() ? test : test.skip;

function programExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## From a program'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md: no ```ts block under "## From a program"');
  return m[1];
}

maybe('the README programmatic example runs and writes its checkpoint', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-readme-'));
  try {
    const code = programExample().replace(/'momentum2-teacher'/g, JSON.stringify(path.join(ROOT, 'lib', 'index')));
    fs.writeFileSync(path.join(dir, 'example.ts'), code);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'example.ts'], {
      cwd: dir, encoding: 'utf8', timeout: 120000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^1 \d+(\.\d+)?$/); // iteration 1 and its loss
    expect(lines[lines.length - 1]).toBe(path.join('outputs', 'api_demo', 'last_epoch_ckpt.safetensors'));
    expect(fs.existsSync(path.join(dir, 'outputs', 'api_demo', 'last_epoch_ckpt.safetensors'))).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Helpers for tests that run the compiled package (dist/) in a child process.
import { spawnSync, SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const DIST = path.join(ROOT, 'dist');

export function requireDist(files: string[] = ['lib/experiment-file.js']): void {
  for (const f of files) {
    if (!fs.existsSync(path.join(DIST, f))) {
      throw new Error(`dist/${f} is missing: run \`npm run build:ts\` first (npm test does)`);
    }
  }
}

export interface LoadResult {
  file: string;
  ok: boolean;
  kind?: string;
  config?: any;
  sources?: string[];
  error?: { name: string; message: string; issues?: { key: string; message: string }[] };
}

export function loadExperiments(files: string[], kind?: string): LoadResult[] {
  const args = [path.join(__dirname, 'load-experiments.js'), ...(kind ? ['--kind', kind] : []), ...files];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`load-experiments failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

export function runCli(
  tool: 'mt-train' | 'mt-eval',
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [path.join(DIST, 'bin', `${tool}.js`), ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0', ...opts.env },
    timeout: opts.timeout ?? 120000,
  });
}

export function tmpDir(prefix = 'm2t-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeFile(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** Does the native addon exist (engine layer built)? */
export function addonBuilt(): boolean {
  return fs.existsSync(path.join(ROOT, 'build', 'Release', 'm2t.node'));
}

/** Does the addon include the data layer (image folders, MNIST)? */
export function dataLayerBuilt(): boolean {
  if (!addonBuilt()) return false;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return typeof require(path.join(ROOT, 'build', 'Release', 'm2t.node')).DataLoader === 'function';
  } catch {
    return false;
  }
}

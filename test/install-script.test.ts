// scripts/install-system-deps.sh against fake dpkg-query / apt-get / apt-cache / id / sudo on PATH:
// what it installs, that it names a package apt cannot install, and that it never runs sudo unasked.
// (CI also runs the real thing on a machine purged of these packages: .ci/run.)
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const SCRIPT = path.join(__dirname, '..', 'scripts', 'install-system-deps.sh');

interface Sandbox { dir: string; log: string; installed: string; }

// Shims keep their state in files: `installed` (one package a line) and `log` (every call).
function sandbox(installed: string[], installable: string[]): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-apt-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const sb = { dir, log: path.join(dir, 'log'), installed: path.join(dir, 'installed') };
  fs.writeFileSync(sb.installed, installed.map((p) => p + '\n').join(''));
  fs.writeFileSync(path.join(dir, 'installable'), installable.map((p) => p + '\n').join(''));
  const shim = (name: string, body: string) =>
    fs.writeFileSync(path.join(bin, name), `#!/bin/bash\necho "${name} $*" >> ${sb.log}\n${body}\n`, { mode: 0o755 });
  shim('dpkg-query', `p="\${@: -1}"; grep -qx "$p" ${sb.installed} && echo -n "install ok installed" || exit 1`);
  shim('apt-cache', `p="\${@: -1}"; if grep -qx "$p" ${dir}/installable; then echo "  Candidate: 1.0"; ` +
    `else echo "  Candidate: (none)"; fi`);
  shim('apt-get', `[ "$1" = update ] && exit 0; for p in "$@"; do case "$p" in -*|install) ;; ` +
    `*) grep -qx "$p" ${dir}/installable && echo "$p" >> ${sb.installed};; esac; done`);
  shim('id', 'echo "${FAKE_UID:-0}"');
  shim('sudo', '"$@"');
  return sb;
}

function run(sb: Sandbox, env: Record<string, string> = {}) {
  const r = spawnSync('bash', [SCRIPT], {
    encoding: 'utf8',
    env: { PATH: `${path.join(sb.dir, 'bin')}:${process.env.PATH}`, ...env },
  });
  const log = fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8') : '';
  return { status: r.status, out: r.stdout + r.stderr, log };
}

const ALL = spawnSync('bash', [SCRIPT, '--list'], { encoding: 'utf8' }).stdout.trim().split('\n');

describe('install-system-deps.sh', () => {
  let sb: Sandbox | undefined;
  afterEach(() => sb && fs.rmSync(sb.dir, { recursive: true, force: true }));

  test('lists pip (scripts/install-onednn.sh fetches oneDNN 3 with it), not Debian\'s oneDNN 2.6', () => {
    expect(ALL).toEqual(expect.arrayContaining(['python3-pip', 'g++', 'cmake']));
    expect(ALL).not.toContain('libdnnl-dev');
    expect(ALL).not.toContain('ocl-icd-opencl-dev');
  });

  test('--fuzz adds clang (scripts/fuzz.sh only); flags in any order; an unknown flag is an error', () => {
    const fuzz = spawnSync('bash', [SCRIPT, '--fuzz', '--list'], { encoding: 'utf8' }).stdout.trim().split('\n');
    expect(fuzz).toEqual([...ALL, 'clang', 'libclang-rt-14-dev', 'libomp-dev']);
    expect(spawnSync('bash', [SCRIPT, '--list', '--fuzz'], { encoding: 'utf8' }).stdout.trim().split('\n')).toEqual(fuzz);
    expect(ALL).not.toContain('clang');
    const bad = spawnSync('bash', [SCRIPT, '--bogus'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown argument '--bogus'/);
  });

  test('does nothing when every package is present', () => {
    sb = sandbox(ALL, ALL);
    const r = run(sb);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/all present/);
    expect(r.log).not.toMatch(/apt-get/);
  });

  test('as root installs exactly the missing packages without recommends', () => {
    sb = sandbox(ALL.filter((p) => p !== 'python3-pip' && p !== 'libspng-dev'), ALL);
    const r = run(sb);
    expect(r.status).toBe(0);
    expect(r.log).toMatch(/^apt-get update/m);
    expect(r.log).toMatch(/^apt-get install -y -qq --no-install-recommends python3-pip libspng-dev$/m);
    expect(r.log).not.toMatch(/sudo/);
  });

  test('fails naming a package apt cannot install, before installing anything', () => {
    sb = sandbox(ALL.filter((p) => p !== 'cmake'), ALL);
    const r = run(sb, { M2T_EXTRA_SYSTEM_PACKAGES: 'm2t-no-such-package' });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/no installable version of m2t-no-such-package/);
    expect(r.log).not.toMatch(/apt-get install/);
  });

  test('fails naming a package that apt-get reports installed but is not', () => {
    sb = sandbox(ALL.filter((p) => p !== 'libgloo-dev'), ALL);
    fs.writeFileSync(path.join(sb.dir, 'bin', 'apt-get'), '#!/bin/bash\nexit 0\n', { mode: 0o755 }); // installs nothing
    const r = run(sb);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/libgloo-dev is still not installed/);
  });

  test('as a normal user prints the apt-get line and stops, never running sudo unasked', () => {
    sb = sandbox(ALL.filter((p) => p !== 'libspng-dev'), ALL);
    const r = run(sb, { FAKE_UID: '1000' });
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/sudo apt-get update && sudo apt-get install -y --no-install-recommends libspng-dev/);
    expect(r.out).toMatch(/M2T_SUDO=1/);
    expect(r.log).not.toMatch(/^(sudo|apt-get)/m);
  });

  test('M2T_SUDO=1 lets a normal user install through sudo', () => {
    sb = sandbox(ALL.filter((p) => p !== 'libspng-dev'), ALL);
    const r = run(sb, { FAKE_UID: '1000', M2T_SUDO: '1' });
    expect(r.status).toBe(0);
    expect(r.log).toMatch(/^sudo apt-get install -y -qq --no-install-recommends libspng-dev$/m);
  });
});

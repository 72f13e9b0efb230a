// Locates and loads the compiled addon (build/Release/m2t.node) from the package root.
import * as fs from 'fs';
import * as path from 'path';

let cached: any | undefined;

export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'native'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`momentum2-teacher: cannot find the package root above ${__dirname}`);
    dir = up;
  }
}

/** The raw Node-API module. Typed wrappers live in engine.ts and data/.
 *  M2T_ADDON=/path/to/m2t.node loads another build (benchmarks compare the portable and -march=native ones). */
export function addon(): any {
  if (cached) return cached;
  // M2T_ADDON_DIR: another build of the addon, relative to the package root or absolute (scripts/test-asan.sh
  // points it at build-asan/Release; tools/bench/portable-vs-native.sh at build-native/Release).
  const file = path.resolve(packageRoot(), process.env.M2T_ADDON_DIR ?? path.join('build', 'Release'), 'm2t.node');
  if (!fs.existsSync(file)) {
    throw new Error(`momentum2-teacher: native addon not built (${file} is missing); run \`npm run build:native\``);
  }
  cached = require(file);
  return cached;
}

// The package's version, for every CLI's --version.
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from './native';

let cached: string | undefined;

export function packageVersion(): string {
  cached ??= (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return cached;
}

// Comments cite docs/algorithm.md by section name: every cited section must exist.
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..');

function files(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else if (/\.(cc|h|ts|json)$/.test(e.name)) out.push(p);
  }
  return out;
}

test('every section of docs/algorithm.md cited in native/ and lib/ exists', () => {
  const doc = fs.readFileSync(path.join(root, 'docs', 'algorithm.md'), 'utf8');
  const headings = new Set([...doc.matchAll(/^#{2,3} (.+)$/gm)].map((m) => m[1].trim()));
  const cited = new Map<string, string>();
  for (const f of [...files(path.join(root, 'native')), ...files(path.join(root, 'lib'))]) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/docs\/algorithm\.md, \\?"([^"\\]+)\\?"/g)) cited.set(m[1], path.relative(root, f));
  }
  expect(cited.size).toBeGreaterThan(5);
  for (const [section, file] of cited) expect([section, file, headings.has(section)]).toEqual([section, file, true]);
});

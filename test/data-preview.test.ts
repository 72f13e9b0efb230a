// The preview grid and the mt-preview command.
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { Dataset, byolView1, byolView2, renderPreview } from '../lib/data';
import { runPreviewCli } from '../lib/cli/preview';
import { makeFolder, tempDir } from './data-fixtures';

let dir: string;
beforeAll(async () => {
  dir = tempDir('preview');
  await makeFolder(path.join(dir, 'data'), 2, 3);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a grid of images beside their two views', async () => {
  const ds = await Dataset.openFolder(path.join(dir, 'data'), { cache: false });
  const views = [byolView1({ size: 40 }), byolView2({ size: 40 })];
  const g = await renderPreview(ds, { count: 4, views, cell: 40, gap: 2 });
  expect([g.width, g.height]).toEqual([3 * 40 + 4 * 2, 4 * 40 + 5 * 2]);
  expect(g.rows.map((r) => r.index)).toEqual([0, 1, 3, 4]);
  const meta = await sharp(g.png).metadata();
  expect([meta.format, meta.width, meta.height]).toEqual(['png', g.width, g.height]);
  // The views shown are exactly the loader's draws for (seed, epoch, slot).
  const a = await ds.augment(1, views, { seed: 3, epoch: 2 }), b = await ds.augment(1, views, { seed: 3, epoch: 2 });
  expect(Buffer.from(a[0].data).equals(Buffer.from(b[0].data))).toBe(true);
  expect(a[0].params.crop.length).toBe(4);
});

describe('mt-preview', () => {
  let out = '';
  let err = '';
  beforeEach(() => {
    out = err = '';
    jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
    jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  });
  afterEach(() => jest.restoreAllMocks());

  test('writes a PNG for an image folder and for MNIST', async () => {
    const png = path.join(dir, 'grid.png');
    expect(await runPreviewCli(['--data-root', path.join(dir, 'data'), '--out', png, '-n', '3', '--size', '48', '--no-cache'])).toBe(0);
    expect(out).toMatch(/wrote .*grid\.png \(\d+x\d+, 3 images of 6/);
    expect((await sharp(png).metadata()).format).toBe('png');
    const mnist = path.join(dir, 'mnist.png');
    expect(await runPreviewCli(['--mnist', 'test', '--out', mnist, '-n', '2'])).toBe(0);
    expect((await sharp(mnist).metadata()).height).toBe(2 * 96 + 3 * 4);
  });

  test('clear errors for a missing folder or bad flags', async () => {
    expect(await runPreviewCli(['--data-root', path.join(dir, 'nope'), '--out', path.join(dir, 'x.png')])).toBe(1);
    expect(err).toMatch(/nope does not exist.*one sub-folder per class/);
    expect(await runPreviewCli(['--out', path.join(dir, 'x.png')])).toBe(2);
    expect(err).toMatch(/exactly one of --data-root/);
  });
});

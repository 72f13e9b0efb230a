// Issue 13, finding 8 at the data layer: a decode pixel limit (PIL's MAX_IMAGE_PIXELS by default,
// configurable) checked on the header before any pixel is allocated, and an empty class folder
// refused with a message naming it.
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { addon } from '../lib/native';
import { DEFAULT_MAX_IMAGE_PIXELS } from '../lib/data/provider';
import { dataLayerBuilt, requireDist, runCli, tmpDir } from './helpers/dist';
import { makeImageFolder } from './helpers/images';
import { tinyPretrain } from './helpers/fixtures';

const maybe = dataLayerBuilt() ? describe : describe.skip;

/** A PNG whose header claims w×h pixels (the data stream is a stub: the limit must stop first). */
function pngHeader(w: number, h: number): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]));
}

maybe('decode pixel limit', () => {
  afterEach(() => addon().setMaxImagePixels(DEFAULT_MAX_IMAGE_PIXELS));

  test("defaults to PIL's MAX_IMAGE_PIXELS", () => {
    expect(DEFAULT_MAX_IMAGE_PIXELS).toBe(Math.floor(1024 ** 3 / 4 / 3));
    expect(addon().setMaxImagePixels()).toBe(DEFAULT_MAX_IMAGE_PIXELS);
  });

  test('a 16000x16000 PNG is refused from its header, at once, naming the limit', async () => {
    const ds = new (addon().DataSet)();
    ds.setEncoded([pngHeader(16000, 16000)], null, ['bomb.png']);
    const t = Date.now();
    await expect(ds.decode(0)).rejects.toThrow(/^bomb\.png: image of 16000x16000 pixels is larger than the limit of 89478485 pixels \(data\.maxImagePixels\)/);
    expect(Date.now() - t).toBeLessThan(1000);
  });

  test('the limit is configurable', async () => {
    const ds = new (addon().DataSet)();
    ds.setEncoded([pngHeader(20, 20)], null, ['small.png']);
    expect(addon().setMaxImagePixels(399)).toBe(DEFAULT_MAX_IMAGE_PIXELS);
    await expect(ds.decode(0)).rejects.toThrow(/20x20 pixels is larger than the limit of 399 pixels/);
    expect(() => addon().setMaxImagePixels(0)).toThrow(/pixels must be an integer in \[1, /);
  });
});

maybe('empty class folder', () => {
  beforeAll(() => requireDist(['bin/mt-train.js']));
  test('is refused naming the folder (torchvision refuses it too)', async () => {
    const dir = tmpDir('m2t-empty-class-');
    await makeImageFolder(path.join(dir, 'data'), { classes: 2, train: 4, val: 1 });
    fs.mkdirSync(path.join(dir, 'data', 'train', 'class_9'));
    tinyPretrain(dir, { data: `train: { kind: 'imagefolder', root: 'data/train' }` });
    const r = runCli('mt-train', ['-f', 'tiny_pretrain.ts', '--progress', 'none'], { cwd: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^mt-train: error: data\/train: the class folder 'class_9' holds no images; remove it or add images$/m);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

maybe('epochIndices', () => {
  // Found by the N-API fuzz: n = 2^31 went to the allocator (32 GiB) and the OOM killer.
  test('an n whose order cannot fit in memory is a RangeError naming the estimate', () => {
    expect(() => addon().epochIndices(2 ** 40, 1, 0, 0, 1, true)).toThrow(/^epochIndices: n = 1099511627776 needs about 40 TiB but only [\d.]+ [KMGT]?i?B is available/);
    expect(addon().epochIndices(10, 1, 0, 0, 1, true).indices.length).toBe(10);
  });
});

// The data binding reads arguments, settles Promises and maps errors with the engine's code
// (native/binding/convert.h): the same message shapes and JS error classes on both sides.
maybe('data binding errors', () => {
  const kind = (f: () => unknown) => { try { f(); } catch (e) { return `${(e as Error).name}: ${(e as Error).message}`; } return 'no error'; };
  test('config objects name the key; unknown keys are refused; positional arguments name the position', async () => {
    const ds = new (addon().DataSet)();
    ds.setPixels(new Uint8Array(4 * 8 * 8 * 3), 4, 8, 8, 3, null);
    const view = { size: [8, 8] };
    expect(kind(() => new (addon().DataLoader)(ds, { batchSize: 2, views: [{ ...view, bogus: 1 }] }))).toBe("TypeError: view1: unknown key 'bogus'");
    expect(kind(() => new (addon().DataLoader)(ds, { batchSize: 2, views: [view], prefetch: 0 })))
      .toBe("RangeError: DataLoader options: 'prefetch' must be a finite number in [1, 64], got 0");
    expect(kind(() => new (addon().DataLoader)(ds, { batchSize: 2, views: [{ ...view, mean: [0, 0] }] })))
      .toBe("TypeError: view1: 'mean' must be an array of 3 finite numbers");
    expect(kind(() => new (addon().DataLoader)(ds, 7))).toBe('TypeError: DataLoader options: expected an object');
    // A core data error keeps its class through the shared mapping, on the JS thread and from the pool.
    expect(kind(() => new (addon().DataLoader)(ds, { batchSize: 8, views: [view] }))).toMatch(/^RangeError: loader: 4 images over 1 process\(es\)/);
    expect(kind(() => ds.decode('x'))).toBe('TypeError: decode: index (argument 1) must be a number');
    const idx = new (addon().DataSet)();
    await expect(idx.openIdx('/nonexistent/images.idx')).rejects.toThrow(/images\.idx/);
  });
});

// embed() / mt-embed: every image's features in dataset order, equal to the encoder run on the
// same images normalised by hand; labels and file names per row; the safetensors written. Also
// the `idx` dataset kind (plain and .gz) the embeddings are read from.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LinearProbe, readCheckpoint } from '../lib/engine';
import { embed } from '../lib/embed';
import { Dataset } from '../lib/data/datasets';
import { readSafetensorsHeader } from '../lib/checkpoint';
import { pretrainBase } from '../lib/experiment';
import { runEmbedCli } from '../lib/cli/embed';
import { trainedCheckpoint } from './helpers/checkpoints';
import { writeIdx } from './helpers/idx';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-embed-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const ck = path.join(tmp, 'ck.safetensors');
const N = 7, S = 16;
let plain: ReturnType<typeof writeIdx>;
let gz: ReturnType<typeof writeIdx>;

beforeAll(async () => {
  // imageSize 16 in the run's config: the eval transform is resize 18 → crop 16; images are 16 px.
  await trainedCheckpoint(ck, { arch: 'resnet18', width: 0.125, smallStem: true, imageSize: S });
  fs.mkdirSync(path.join(tmp, 'plain'));
  fs.mkdirSync(path.join(tmp, 'gz'));
  plain = writeIdx(path.join(tmp, 'plain'), N, S, 3, false);
  gz = writeIdx(path.join(tmp, 'gz'), N, S, 3, true);
});

describe('idx datasets', () => {
  test('.gz files read the same pixels and labels as plain ones', async () => {
    const a = await Dataset.openIdx(plain.images, plain.labels);
    const b = await Dataset.openIdx(gz.images, gz.labels);
    expect(b.size).toBe(N);
    expect(Array.from(b.labels())).toEqual(plain.labelValues);
    expect(Array.from(a.labels())).toEqual(plain.labelValues);
    for (const i of [0, 3, 6]) {
      const [x, y] = [await a.decode(i), await b.decode(i)];
      expect([y.width, y.height]).toEqual([S, S]);
      expect(Buffer.from(y.data).equals(Buffer.from(x.data))).toBe(true);
      // Grayscale → RGB: every channel is the stored byte.
      expect(y.data[0]).toBe(plain.pixels[i * S * S]);
    }
  });

  test('bad .gz files are named', async () => {
    const bad = path.join(tmp, 'bad.gz');
    fs.writeFileSync(bad, 'not gzip');
    await expect(Dataset.openIdx(bad)).rejects.toThrow(/bad\.gz: not a gzip file/);
    await expect(Dataset.openIdx(gz.images, plain.images)).rejects.toThrow(/labels must be \[7\]/);
  });

  test("experiments accept { kind: 'idx', images, labels }", () => {
    const e = pretrainBase.extend({ data: { train: { kind: 'idx', images: gz.images, labels: gz.labels } } });
    expect(e.config.data.train).toEqual({ kind: 'idx', images: gz.images, labels: gz.labels });
    expect(() => pretrainBase.extend({ data: { train: { kind: 'idx' } as never } })).toThrow(/images/);
  });
});

describe('embed', () => {
  test('features in dataset order equal the encoder on hand-normalised images; labels, files, the file written', async () => {
    const out = path.join(tmp, 'feats.safetensors');
    const progress: number[] = [];
    // Resize to 16 (= the images) and crop 16: the transform is only the normalisation.
    const r = await embed({
      checkpoint: ck, data: { kind: 'idx', images: gz.images, labels: gz.labels }, batchSize: 3, resize: S, imageSize: S,
      out, threads: 2, workers: 1, onProgress: (d) => progress.push(d),
    });
    expect(progress).toEqual([3, 6, 7]);
    expect([r.n, r.dim]).toEqual([N, 64]);
    expect(Array.from(r.labels)).toEqual(plain.labelValues);
    expect(r.files).toHaveLength(N);
    expect(new Set(r.files).size).toBe(N);
    // Reference: the run's mean/std (0.5, 0.25) applied by hand, NHWC, one batch.
    const x = new Float32Array(N * S * S * 3);
    for (let p = 0; p < N * S * S; p++) for (let c = 0; c < 3; c++) x[p * 3 + c] = (plain.pixels[p] / 255 - 0.5) / 0.25;
    const probe = new LinearProbe({ arch: 'resnet18', width: 0.125, smallStem: true, numClasses: 2, threads: 2 });
    probe.loadEncoder((await readCheckpoint(ck)).tensors, 'teacher_encoder.');
    const want = await probe.features({ data: x, shape: [N, S, S, 3] });
    // Relative: batches of 3 vs one of 7 round differently in float32.
    let err = 0, mag = 0;
    for (let i = 0; i < want.length; i++) {
      err = Math.max(err, Math.abs(want[i] - r.features[i]));
      mag = Math.max(mag, Math.abs(want[i]));
    }
    expect(err / mag).toBeLessThan(1e-5);
    const hdr = readSafetensorsHeader(out);
    expect(hdr.tensors.features).toMatchObject({ dtype: 'F32', shape: [N, 64] });
    expect(hdr.tensors.labels).toMatchObject({ dtype: 'I64', shape: [N] });
    expect(JSON.parse(hdr.metadata.files)).toEqual(r.files);
    expect(JSON.parse(hdr.metadata.classes)).toEqual(['0', '1', '2']);
    const back = await readCheckpoint(out);
    expect(Array.from(back.tensors.features.data)).toEqual(Array.from(r.features));
    expect(Array.from(back.tensors.labels.data)).toEqual(plain.labelValues);
  });

  test('mt-embed CLI: one data source required; writes the file', async () => {
    const err: string[] = [];
    const out: string[] = [];
    const se = jest.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    const so = jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    const file = path.join(tmp, 'cli.safetensors');
    try {
      expect(await runEmbedCli(['--pretrained', ck, '--out', file])).toBe(2);
      expect(await runEmbedCli(['--pretrained', ck, '--out', file, '--idx-images', plain.images, '--idx-labels', plain.labels, '--progress', 'none', '-b', '4'])).toBe(0);
      expect(await runEmbedCli(['--pretrained', path.join(tmp, 'none.safetensors'), '--out', file, '--idx-images', plain.images, '--progress', 'none'])).toBe(1);
    } finally {
      se.mockRestore();
      so.mockRestore();
    }
    expect(err.join('')).toMatch(/give exactly one of --data-root DIR, --mnist train\|test or --idx-images FILE/);
    expect(err.join('')).toMatch(/mt-embed: error: cannot read checkpoint .*none\.safetensors/);
    expect(out.join('')).toMatch(/wrote .*cli\.safetensors: 7 x 64 features \(teacher encoder\), 3 classes/);
    expect(readSafetensorsHeader(file).tensors.features.shape).toEqual([N, 64]);
  });
});

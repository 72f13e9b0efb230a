// mt-export / exportEncoder: torchvision names without fc, int64 BN counters, the JSON sidecar,
// the torchvision preset's refusal of non-torchvision encoders, and the ONNX graph run in
// onnxruntime-node against the engine's own features.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { LinearProbe, readCheckpoint } from '../lib/engine';
import { exportEncoder, type EncoderDescription } from '../lib/export';
import { readSafetensorsHeader } from '../lib/checkpoint';
import { runExportCli } from '../lib/cli/export';
import { images, toNchw, trainedCheckpoint, type TinyRun } from './helpers/checkpoints';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-export-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const small: TinyRun = { arch: 'resnet18', width: 0.125, smallStem: true, imageSize: 32 };
const bottleneck: TinyRun = { arch: 'resnet50', width: 0.125, smallStem: false, imageSize: 64 };
const ckSmall = path.join(tmp, 'small.safetensors');
const ckBottleneck = path.join(tmp, 'r50.safetensors');

beforeAll(async () => {
  await trainedCheckpoint(ckSmall, small);
  await trainedCheckpoint(ckBottleneck, bottleneck);
});

async function engineFeatures(ck: string, r: TinyRun, encoder: 'teacher' | 'student', n: number) {
  const probe = new LinearProbe({ arch: r.arch, width: r.width, smallStem: r.smallStem, numClasses: 2, threads: 2 });
  probe.loadEncoder((await readCheckpoint(ck)).tensors, `${encoder}_encoder.`);
  const x = images(n, r.imageSize, 7);
  return { x, f: await probe.features(x) };
}

/** ‖a − b‖₂ / ‖b‖₂ and max|a − b| / max|b|. */
function relErr(a: Float32Array, b: Float32Array): { l2: number; max: number } {
  let d = 0, m = 0, d2 = 0, m2 = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
    d2 += (a[i] - b[i]) ** 2;
    m2 += b[i] ** 2;
  }
  return { l2: Math.sqrt(d2 / m2), max: d / m };
}

describe('safetensors export', () => {
  test('the encoder under torchvision names, fc dropped, counters int64, values equal', async () => {
    for (const encoder of ['teacher', 'student'] as const) {
      const out = path.join(tmp, `${encoder}.safetensors`);
      const r = await exportEncoder({ checkpoint: ckSmall, out, encoder, format: 'safetensors' });
      const src = (await readCheckpoint(ckSmall)).tensors;
      const hdr = readSafetensorsHeader(out);
      const names = Object.keys(hdr.tensors);
      const want = Object.keys(src).filter((k) => k.startsWith(`${encoder}_encoder.`) && !k.includes('.fc.')).map((k) => k.slice(encoder.length + 9));
      expect(names.sort()).toEqual(want.sort());
      expect(names).toContain('conv1.weight');
      expect(names).toContain('layer4.1.bn2.running_var');
      expect(names.some((k) => k.startsWith('fc.'))).toBe(false);
      expect(hdr.tensors['bn1.num_batches_tracked']).toEqual({ dtype: 'I64', shape: [], data_offsets: expect.any(Array) });
      expect(hdr.tensors['conv1.weight'].dtype).toBe('F32');
      expect(hdr.metadata).toMatchObject({ format: 'pt', arch: 'resnet18', width: '0.125', small_stem: 'true', encoder });
      const back = (await readCheckpoint(out)).tensors;
      for (const k of names) expect(Array.from(back[k].data)).toEqual(Array.from(src[`${encoder}_encoder.${k}`].data));
      // The teacher and student differ after a step: the export takes the one asked for.
      expect(back['bn1.running_mean'].data).toEqual(src[`${encoder}_encoder.bn1.running_mean`].data);
      const d: EncoderDescription = JSON.parse(fs.readFileSync(r.json, 'utf8'));
      expect(r.json).toBe(path.join(tmp, `${encoder}.json`));
      expect(d).toMatchObject({
        format: 'safetensors', arch: 'resnet18', width: 0.125, smallStem: true, featureDim: 64, encoder,
        torchvision: null, timm: null, tensors: names.length,
        transform: { resize: 37, crop: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
        source: { iteration: 1, epoch: 1 },
      });
      expect(d.notes.join(' ')).toMatch(/width 0\.125.*small stem/);
    }
  });

  test('the torchvision preset refuses a width multiplier and the small stem, naming both', async () => {
    const out = path.join(tmp, 'refused.safetensors');
    await expect(exportEncoder({ checkpoint: ckSmall, out })).rejects.toThrow(
      /resnet18 with width 0\.125 .* and the small stem .*torchvision's resnet18\(\) cannot load it\. Use --format safetensors/,
    );
    expect(fs.existsSync(out)).toBe(false);
    await expect(exportEncoder({ checkpoint: ckBottleneck, out })).rejects.toThrow(/width 0\.125/);
  });

  test('bad input: a missing checkpoint, a non-checkpoint, a bad format', async () => {
    await expect(exportEncoder({ checkpoint: path.join(tmp, 'nope.safetensors'), out: path.join(tmp, 'x.safetensors') })).rejects.toThrow(/checkpoint not found: .*nope\.safetensors/);
    const junk = path.join(tmp, 'junk.safetensors');
    fs.writeFileSync(junk, 'not a safetensors file');
    await expect(exportEncoder({ checkpoint: junk, out: path.join(tmp, 'x.safetensors') })).rejects.toThrow(/cannot read checkpoint .*junk\.safetensors/);
    await expect(exportEncoder({ checkpoint: ckSmall, out: path.join(tmp, 'x.bin'), format: 'pickle' as never })).rejects.toThrow(/--format must be torchvision, safetensors or onnx/);
  });

  test('mt-export CLI: exit 1 with a one-line reason for the torchvision preset; 0 with --format safetensors', async () => {
    const err: string[] = [];
    const out: string[] = [];
    const se = jest.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    const so = jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      expect(await runExportCli(['--pretrained', ckSmall, '--out', path.join(tmp, 'cli.safetensors')])).toBe(1);
      expect(await runExportCli(['--pretrained', ckSmall, '--out', path.join(tmp, 'cli.safetensors'), '--format', 'safetensors', '--encoder', 'student'])).toBe(0);
    } finally {
      se.mockRestore();
      so.mockRestore();
    }
    expect(err.join('')).toMatch(/^mt-export: error: .*cannot load it/);
    expect(out.join('')).toMatch(/wrote .*cli\.safetensors \(student encoder, resnet18 width 0\.125, small stem, 64-d features/);
  });
});

describe('ONNX export', () => {
  /** onnxruntime-node (a devDependency; its CPU binaries ship in the npm package) in a child process. */
  function runOrt(model: string, x: Float32Array, dims: number[]) {
    const input = path.join(tmp, 'ort-input.f32');
    fs.writeFileSync(input, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
    const r = spawnSync(process.execPath, [path.join(__dirname, 'helpers', 'ort-run.js'), model, input, dims.join(',')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`onnxruntime-node failed: ${r.stderr}`);
    const o = JSON.parse(r.stdout) as { inputNames: string[]; outputNames: string[]; dims: number[]; data: string };
    const b = Buffer.from(o.data, 'base64');
    return { ...o, data: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) };
  }

  // The teacher's BN statistics after one step are those of one 2-image batch (α = 1): in a
  // ResNet-50's last stage (2x2 maps) some channels' variance is tiny and float32 rounding is
  // amplified to ~1e-4. The student's running statistics (momentum 0.1) are well conditioned.
  test.each([
    ['resnet18, small stem, teacher', small, ckSmall, 'teacher'],
    ['resnet50 (bottleneck, 7x7 stem, max pool, downsample), student', bottleneck, ckBottleneck, 'student'],
  ] as const)('%s: onnxruntime features equal the engine\'s (≤ 1e-5 relative)', async (_name, r, ck, encoder) => {
    const out = path.join(tmp, `${r.arch}.onnx`);
    const res = await exportEncoder({ checkpoint: ck, out, format: 'onnx', encoder });
    expect(res.description).toMatchObject({ format: 'onnx', arch: r.arch, torchvision: null });
    const { x, f } = await engineFeatures(ck, r, encoder, 3);
    const y = runOrt(out, toNchw(x), [3, 3, r.imageSize, r.imageSize]);
    expect(y.inputNames).toEqual(['input']);
    expect(y.outputNames).toEqual(['features']);
    expect(y.dims).toEqual([3, res.description.featureDim]);
    const err = relErr(y.data, f);
    console.log(`ONNX ${r.arch} width ${r.width}: relative error ‖ort − engine‖₂/‖engine‖₂ = ${err.l2.toExponential(2)}, max-abs ${err.max.toExponential(2)}`);
    expect(err.l2).toBeLessThanOrEqual(1e-5);
    expect(err.max).toBeLessThanOrEqual(1e-5);
  });
});

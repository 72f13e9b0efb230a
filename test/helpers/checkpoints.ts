// A small trained checkpoint for export/embed/report tests: one M2T step on deterministic images,
// so BN running statistics (teacher and student) are no longer their initial 0/1.
import { Momentum2Teacher, type Arch, type ImageBatch } from '../../lib/engine';

export function images(n: number, size: number, seed: number): ImageBatch {
  const data = new Float32Array(n * size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(seed * 1000 + i * 0.37) + 0.3 * Math.cos(i * 0.011);
  return { data, shape: [n, size, size, 3] };
}

/** NHWC → NCHW (PyTorch/ONNX layout). */
export function toNchw(b: ImageBatch): Float32Array {
  const [n, h, w, c] = b.shape;
  const out = new Float32Array(b.data.length);
  for (let i = 0; i < n; i++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[((i * c + k) * h + y) * w + x] = b.data[((i * h + y) * w + x) * c + k];
  return out;
}

export interface TinyRun {
  arch: Arch;
  width: number;
  smallStem: boolean;
  imageSize: number;
}

/** Writes a pre-training checkpoint after one step; metadata as a run writes (the parts export reads). */
export async function trainedCheckpoint(file: string, r: TinyRun): Promise<void> {
  const net = new Momentum2Teacher({ arch: r.arch, width: r.width, smallStem: r.smallStem, hiddenDim: 16, outDim: 8, totalIterations: 4, threads: 2, seed: 3 });
  await net.step(images(2, r.imageSize, 1), images(2, r.imageSize, 2), 0.05);
  const config = {
    kind: 'pretrain',
    model: { arch: r.arch, width: r.width, smallStem: r.smallStem },
    data: { imageSize: r.imageSize, augmentation: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } },
  };
  await net.save(file, { 'run.kind': 'pretrain', 'run.iteration': '1', 'run.epoch': '1', 'run.config': JSON.stringify(config) });
}

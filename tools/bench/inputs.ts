// Deterministic synthetic image batches for the benchmarks: NHWC float32 in [-1, 1) from a 32-bit LCG.
import type { ImageBatch } from '../../lib/engine';

export function syntheticBatch(n: number, size: number, seed: number): ImageBatch {
  const data = new Float32Array(n * size * size * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return { data, shape: [n, size, size, 3] };
}

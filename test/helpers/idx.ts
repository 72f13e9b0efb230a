// Tiny IDX files (MNIST's format) for tests, plain and gzipped.
import * as fs from 'fs';
import * as zlib from 'zlib';

export function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

/** n grayscale size x size images with a deterministic pattern and labels i % classes. */
export function writeIdx(dir: string, n: number, size: number, classes: number, gz: boolean): { images: string; labels: string; pixels: Uint8Array; labelValues: number[] } {
  const pixels = new Uint8Array(n * size * size);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + Math.floor(i / 7) * 11) % 256;
  const labelValues = Array.from({ length: n }, (_, i) => i % classes);
  const ext = gz ? '.gz' : '';
  const images = `${dir}/images-idx3-ubyte${ext}`;
  const labels = `${dir}/labels-idx1-ubyte${ext}`;
  const im = idxBytes([n, size, size], pixels);
  const lb = idxBytes([n], Uint8Array.from(labelValues));
  fs.writeFileSync(images, gz ? zlib.gzipSync(im) : im);
  fs.writeFileSync(labels, gz ? zlib.gzipSync(lb) : lb);
  return { images, labels, pixels, labelValues };
}

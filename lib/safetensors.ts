// A small safetensors writer for files other tools read (exports, embeddings): the format is an
// 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__},
// padded with spaces to a multiple of 8, then the tensors' bytes back to back. Atomic (temp + rename).
import * as fs from 'fs';
import * as path from 'path';

export type SafetensorsDtype = 'F32' | 'I64' | 'I32' | 'U8';

export interface OutTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Raw little-endian bytes of the tensor (length = product(shape) · itemsize). */
  data: Uint8Array;
}

const ITEM: Record<SafetensorsDtype, number> = { F32: 4, I64: 8, I32: 4, U8: 1 };

export function f32(shape: number[], data: Float32Array): OutTensor {
  return { dtype: 'F32', shape, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function i64(shape: number[], values: ArrayLike<number>): OutTensor {
  const a = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) a[i] = BigInt(Math.round(values[i]));
  return { dtype: 'I64', shape, data: new Uint8Array(a.buffer) };
}

/** fs.writeSync may write less than asked (large buffers): loop until done. */
function writeAll(fd: number, b: Uint8Array): void {
  for (let o = 0; o < b.byteLength; ) o += fs.writeSync(fd, b, o, Math.min(b.byteLength - o, 1 << 30));
}

/** Writes `tensors` (in the given order) and string `metadata` to `file`. */
export function writeSafetensors(file: string, tensors: Record<string, OutTensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.byteLength !== n * ITEM[t.dtype]) {
      throw new RangeError(`safetensors: tensor ${name} has ${t.data.byteLength} bytes, shape [${t.shape}] ${t.dtype} needs ${n * ITEM[t.dtype]}`);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    writeAll(fd, len);
    writeAll(fd, json);
    for (const t of Object.values(tensors)) writeAll(fd, t.data);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

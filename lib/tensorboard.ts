// TensorBoard scalars: an `events.out.tfevents.*` file of TFRecords, each holding a tensorflow
// Event protobuf. A TFRecord is
//   uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// with masked(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32) and CRC-32C (Castagnoli,
// reflected polynomial 0x82f63b78). Event: wall_time = 1 (double), step = 2 (int64),
// file_version = 3 (string), summary = 5; Summary.value = 1; Value: tag = 1, simple_value = 2 (float).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writer } from 'protobufjs/minimal';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `b` (crc32c("123456789") = 0xe3069283). */
export function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC. */
export function maskedCrc32c(b: Uint8Array): number {
  const c = crc32c(b);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(maskedCrc32c(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([head, data, tail]);
}

function event(wallTime: number, step: number, fill: (w: Writer) => void): Uint8Array {
  const w = Writer.create();
  w.uint32((1 << 3) | 1).double(wallTime);
  w.uint32((2 << 3) | 0).int64(step);
  fill(w);
  return w.finish();
}

/** The Event bytes of scalar values at `step`. */
export function scalarEvent(wallTime: number, step: number, scalars: Record<string, number>): Uint8Array {
  return event(wallTime, step, (w) => {
    const summary = w.uint32((5 << 3) | 2).fork();
    for (const [tag, v] of Object.entries(scalars)) {
      summary.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string(tag).uint32((2 << 3) | 5).float(v).ldelim();
    }
    summary.ldelim();
  });
}

/** Appends scalar summaries to a new events file in `dir` (TensorBoard's `--logdir`). */
export class EventWriter {
  readonly file: string;
  private fd: number;
  private pending: Buffer[] = [];

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    const now = Date.now() / 1000;
    this.file = path.join(dir, `events.out.tfevents.${Math.floor(now)}.${os.hostname()}.${process.pid}.0`);
    this.fd = fs.openSync(this.file, 'a');
    this.pending.push(tfRecord(event(now, 0, (w) => w.uint32((3 << 3) | 2).string('brain.Event:2'))));
    this.flush();
  }

  /** Non-finite values are written too (TensorBoard shows NaN/inf). */
  scalars(step: number, values: Record<string, number>, wallTime = Date.now() / 1000): void {
    if (Object.keys(values).length) this.pending.push(tfRecord(scalarEvent(wallTime, step, values)));
  }

  flush(): void {
    if (this.pending.length) {
      fs.writeSync(this.fd, Buffer.concat(this.pending));
      this.pending = [];
    }
  }

  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }
}

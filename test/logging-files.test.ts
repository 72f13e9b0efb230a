// metrics.csv and TensorBoard event files beside metrics.jsonl: the CSV holds exactly the JSON
// lines' rows (a key that appears later widens the header), a resumed run truncates both, and the
// event file is valid TFRecords (CRC-32C masked) of Event protos with the records' scalars.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Reader } from 'protobufjs/minimal';
import { MetricsWriter } from '../lib/logging';
import { crc32c, maskedCrc32c } from '../lib/tensorboard';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'm2t-logs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function csv(file: string): Record<string, string>[] {
  const [head, ...lines] = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
}

/** Decodes an events file: checks both CRCs of every record, returns the Events. */
function readEvents(file: string): { wallTime: number; step: number; fileVersion?: string; values: Record<string, number> }[] {
  const b = fs.readFileSync(file);
  const out = [];
  let o = 0;
  while (o < b.length) {
    const len = Number(b.readBigUInt64LE(o));
    expect(b.readUInt32LE(o + 8)).toBe(maskedCrc32c(b.subarray(o, o + 8)));
    const data = b.subarray(o + 12, o + 12 + len);
    expect(b.readUInt32LE(o + 12 + len)).toBe(maskedCrc32c(data));
    o += 16 + len;
    const r = Reader.create(data);
    const ev: { wallTime: number; step: number; fileVersion?: string; values: Record<string, number> } = { wallTime: 0, step: 0, values: {} };
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === ((1 << 3) | 1)) ev.wallTime = r.double();
      else if (tag === (2 << 3)) ev.step = Number(r.int64());
      else if (tag === ((3 << 3) | 2)) ev.fileVersion = r.string();
      else if (tag === ((5 << 3) | 2)) {
        const end = r.uint32() + r.pos;
        while (r.pos < end) {
          expect(r.uint32()).toBe((1 << 3) | 2);
          const vEnd = r.uint32() + r.pos;
          let name = '', value = NaN;
          while (r.pos < vEnd) {
            const t = r.uint32();
            if (t === ((1 << 3) | 2)) name = r.string();
            else if (t === ((2 << 3) | 5)) value = r.float();
            else r.skipType(t & 7);
          }
          ev.values[name] = value;
        }
      } else r.skipType(tag & 7);
    }
    out.push(ev);
  }
  return out;
}

test('CRC-32C: the standard check value and TFRecord masking', () => {
  expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  const c = 0xe3069283;
  expect(maskedCrc32c(Buffer.from('123456789'))).toBe(((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
});

test('metrics.csv mirrors metrics.jsonl; a later key widens the header; TensorBoard events hold the scalars', () => {
  const dir = path.join(tmp, 'run');
  const file = path.join(dir, 'metrics.jsonl');
  const m = new MetricsWriter(file);
  const rows: Record<string, unknown>[] = [];
  for (let i = 1; i <= 130; i++) rows.push({ iteration: i, epoch: 1 + Math.floor((i - 1) / 60), batch: (i - 1) % 60, lr: 0.05 * i / 130, loss: 1 / i, imagesPerSec: 10.5 });
  rows.splice(60, 0, { iteration: 60, epoch: 1, knn_top1: 55.25, note: 'a, "quoted"' });
  for (const r of rows) m.write(r);
  m.close();
  const jsonl = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  expect(jsonl).toEqual(rows);
  const text = fs.readFileSync(path.join(dir, 'metrics.csv'), 'utf8');
  expect(text.split('\n')[0]).toBe('iteration,epoch,batch,lr,loss,imagesPerSec,knn_top1,note');
  expect(text).toContain('60,1,,,,,55.25,"a, ""quoted"""');
  const parsed = csv(path.join(dir, 'metrics.csv')).filter((r) => r.knn_top1 === '');
  const plain = rows.filter((r) => r.knn_top1 === undefined);
  expect(parsed).toHaveLength(plain.length);
  parsed.forEach((r, i) => {
    expect(Number(r.iteration)).toBe(plain[i].iteration);
    expect(Number(r.lr)).toBe(plain[i].lr); // full precision, not rounded
    expect(Number(r.loss)).toBe(plain[i].loss);
    expect(r.knn_top1).toBe('');
  });

  const evFiles = fs.readdirSync(path.join(dir, 'tensorboard'));
  expect(evFiles).toHaveLength(1);
  expect(evFiles[0]).toMatch(/^events\.out\.tfevents\.\d+\./);
  const events = readEvents(path.join(dir, 'tensorboard', evFiles[0]));
  expect(events[0].fileVersion).toBe('brain.Event:2');
  const scalars = events.slice(1);
  expect(scalars).toHaveLength(rows.length);
  scalars.forEach((e, i) => {
    expect(e.step).toBe(rows[i].iteration);
    for (const [k, v] of Object.entries(rows[i])) {
      if (typeof v === 'number' && k !== 'iteration' && k !== 'batch') expect(e.values[k]).toBe(Math.fround(v));
    }
    expect(e.values.batch).toBeUndefined();
  });
});

test('a resumed run (keepUpTo) truncates metrics.jsonl and metrics.csv to the checkpoint and appends', () => {
  const dir = path.join(tmp, 'resume');
  const file = path.join(dir, 'metrics.jsonl');
  let m = new MetricsWriter(file, undefined, { tensorboard: false });
  for (let i = 1; i <= 10; i++) m.write({ iteration: i, loss: i });
  m.close();
  m = new MetricsWriter(file, 6, { tensorboard: false });
  m.write({ iteration: 7, loss: 70 });
  m.close();
  expect(fs.existsSync(path.join(dir, 'tensorboard'))).toBe(false);
  expect(csv(path.join(dir, 'metrics.csv')).map((r) => [Number(r.iteration), Number(r.loss)])).toEqual([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, 6], [7, 70]]);
});

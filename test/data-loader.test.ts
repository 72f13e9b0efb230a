// Batch loaders: layout, determinism across thread counts, resume, sharding, evaluation
// batches, bad files, releasing batch memory.
import * as fs from 'fs';
import * as path from 'path';
import { BadDataReport, Dataset, EvalLoader, PretrainLoader, byolView1, byolView2, epochOrder, linearEvalTransform, validationTransform } from '../lib/data';
import { jpeg, makeFolder, tempDir, write } from './data-fixtures';

const S = 32; // small views keep the suite fast
const views = { view1: byolView1({ size: S }), view2: byolView2({ size: S }) };

let dir: string;
let folder: Dataset;
beforeAll(async () => {
  dir = tempDir('loader');
  await makeFolder(path.join(dir, 'data'), 3, 10); // 30 images
  folder = await Dataset.openFolder(path.join(dir, 'data'), { cache: false });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function collect(loader: PretrainLoader, epoch: number, startBatch = 0) {
  const out: { v1: Buffer; v2: Buffer; indices: number[] }[] = [];
  for await (const b of loader.epoch(epoch, { startBatch })) {
    out.push({ v1: Buffer.from(b.view1.data.buffer.slice(0)), v2: Buffer.from(b.view2.data.buffer.slice(0)), indices: Array.from(b.indices) });
    b.release();
  }
  return out;
}

describe('PretrainLoader', () => {
  test('two NHWC float32 views per image, normalised, the last partial batch dropped', async () => {
    const loader = new PretrainLoader(folder, { batchSize: 8, seed: 1, threads: 2, ...views });
    expect(loader.batchesPerEpoch).toBe(3);
    let n = 0;
    for await (const b of loader.epoch(0)) {
      expect(b.view1.shape).toEqual([8, S, S, 3]);
      expect(b.view2.shape).toEqual([8, S, S, 3]);
      expect(Object.prototype.toString.call(b.view1.data)).toBe('[object Float32Array]'); // (another realm's class under jest)
      expect(b.view1.data.length).toBe(8 * S * S * 3);
      expect(b.indices.length).toBe(8);
      // Normalised ImageNet-style: values span roughly [-2.2, 2.7], never all zero.
      let lo = Infinity, hi = -Infinity;
      for (const v of b.view1.data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      expect(lo).toBeGreaterThanOrEqual(-2.2);
      expect(hi).toBeLessThanOrEqual(2.7);
      expect(hi - lo).toBeGreaterThan(1);
      expect(Buffer.from(b.view1.data.buffer).equals(Buffer.from(b.view2.data.buffer))).toBe(false);
      n += b.size;
      b.release();
      expect(b.view1.data.length).toBe(0); // released: detached, memory back to the pool
    }
    expect(n).toBe(24);
    loader.close();
  });

  test('the same batches, bit for bit, with 1 and with several threads', async () => {
    const one = new PretrainLoader(folder, { batchSize: 4, seed: 7, threads: 1, ...views });
    const many = new PretrainLoader(folder, { batchSize: 4, seed: 7, threads: 4, prefetch: 4, ...views });
    for (const epoch of [0, 5]) {
      const a = await collect(one, epoch), b = await collect(many, epoch);
      expect(a.length).toBe(7);
      a.forEach((x, i) => {
        expect(x.indices).toEqual(b[i].indices);
        expect(x.v1.equals(b[i].v1)).toBe(true);
        expect(x.v2.equals(b[i].v2)).toBe(true);
      });
    }
    const e0 = await collect(one, 0), e1 = await collect(one, 1);
    expect(e0.map((b) => b.indices)).not.toEqual(e1.map((b) => b.indices)); // fresh permutation per epoch
    const other = new PretrainLoader(folder, { batchSize: 4, seed: 8, threads: 1, ...views });
    expect((await collect(other, 0))[0].v1.equals(e0[0].v1)).toBe(false);
    one.close();
    many.close();
    other.close();
  });

  test('a resumed epoch continues with exactly the same data', async () => {
    const loader = new PretrainLoader(folder, { batchSize: 4, seed: 3, threads: 2, ...views });
    const full = await collect(loader, 2);
    const tail = await collect(loader, 2, 5);
    expect(tail.length).toBe(2);
    tail.forEach((b, i) => {
      expect(b.indices).toEqual(full[5 + i].indices);
      expect(b.v1.equals(full[5 + i].v1)).toBe(true);
      expect(b.v2.equals(full[5 + i].v2)).toBe(true);
    });
    loader.close();
  });

  test('ranks take disjoint DistributedSampler shards (padded to divide evenly)', async () => {
    const seen: number[] = [];
    for (let rank = 0; rank < 4; rank++) {
      const loader = new PretrainLoader(folder, { batchSize: 8, seed: 11, rank, worldSize: 4, threads: 1, ...views });
      expect(loader.samplesPerRank).toBe(8); // ceil(30 / 4)
      const got = await collect(loader, 0);
      expect(got.length).toBe(1);
      seen.push(...got[0].indices);
      expect(got[0].indices).toEqual(epochOrder(30, { seed: 11, epoch: 0, rank, worldSize: 4 }).indices);
      loader.close();
    }
    expect(seen.length).toBe(32);
    expect(new Set(seen).size).toBe(30); // every image, two repeated as padding
  });

  test('MNIST at 28 px with small-image parameters', async () => {
    const mnist = (await Dataset.mnist('test')).limit(512);
    const small = { size: 28, scale: [0.3, 1] as [number, number], mean: [0.13, 0.13, 0.13] as [number, number, number], std: [0.31, 0.31, 0.31] as [number, number, number] };
    const loader = new PretrainLoader(mnist, { batchSize: 256, view1: byolView1(small), view2: byolView2(small), threads: 2 });
    let batches = 0;
    for await (const b of loader.epoch(0)) {
      expect(b.view1.shape).toEqual([256, 28, 28, 3]);
      batches++;
      b.release();
    }
    expect(batches).toBe(2);
    loader.close();
  });
});

describe('EvalLoader', () => {
  test('validation keeps the last partial batch, in order, with labels', async () => {
    const loader = new EvalLoader(folder, { batchSize: 8, shuffle: false, transform: validationTransform({ size: 32, resize: 36 }), threads: 2 });
    expect(loader.batchesPerEpoch).toBe(4);
    const sizes: number[] = [], labels: number[] = [], indices: number[] = [];
    for await (const b of loader.epoch(0)) {
      expect(b.images.shape).toEqual([b.size, 32, 32, 3]);
      expect(b.images.data.length).toBe(b.size * 32 * 32 * 3);
      sizes.push(b.size);
      labels.push(...b.labels);
      indices.push(...b.indices);
    }
    expect(sizes).toEqual([8, 8, 8, 6]);
    expect(indices).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(labels).toEqual(Array.from(folder.labels()));
    loader.close();
  });

  test('linear-eval training transform, shuffled', async () => {
    const loader = new EvalLoader(folder, { batchSize: 16, dropLast: true, transform: linearEvalTransform({ size: 24 }), seed: 2, threads: 1 });
    const got: number[] = [];
    for await (const b of loader.epoch(1)) got.push(...b.indices);
    expect(got.length).toBe(16);
    expect(got).not.toEqual(Array.from({ length: 16 }, (_, i) => i));
    loader.close();
  });
});

describe('bad data', () => {
  test('truncated JPEGs, zero-byte and text files named .jpg are skipped, replaced and reported once per epoch', async () => {
    const root = path.join(dir, 'salted');
    await makeFolder(root, 2, 12); // 24 good images
    const good = await jpeg(64, 48, 77);
    write(path.join(root, 'class_0', 'truncated_a.jpg'), good.subarray(0, good.length >> 1));
    write(path.join(root, 'class_1', 'truncated_b.jpg'), good.subarray(0, 300));
    write(path.join(root, 'class_0', 'zero.jpg'), Buffer.alloc(0));
    write(path.join(root, 'class_1', 'notes.jpg'), 'this is a text file, not a JPEG\n');
    write(path.join(root, 'class_1', 'html.png'), '<html>404</html>');
    const ds = await Dataset.openFolder(root, { cache: false });
    expect(ds.size).toBe(29);
    const reports: BadDataReport[] = [];
    const loader = new PretrainLoader(ds, { batchSize: 4, seed: 5, threads: 2, onBadData: (r) => reports.push(r), ...views });
    const badIndex = new Set(Array.from({ length: ds.size }, (_, i) => i).filter((i) => /truncated|zero|notes|html/.test(ds.path(i))));
    expect(badIndex.size).toBe(5);
    for (const epoch of [0, 1]) {
      let batches = 0;
      for await (const b of loader.epoch(epoch)) {
        for (const i of b.indices) expect(badIndex.has(i)).toBe(false);
        for (const v of b.view1.data.subarray(0, 100)) expect(Number.isFinite(v)).toBe(true);
        batches++;
        b.release();
      }
      expect(batches).toBe(7);
    }
    expect(reports.length).toBe(2); // once per epoch
    for (const r of reports) {
      expect(r.count).toBeGreaterThanOrEqual(3);
      expect(r.examples.length).toBeGreaterThan(0);
      for (const e of r.examples) {
        expect(e.path).toMatch(/truncated|zero|notes|html/);
        expect(e.error.length).toBeGreaterThan(3);
      }
    }
    expect(reports[0].epoch).toBe(0);
    expect(reports[1].epoch).toBe(1);
    // Deterministic: another loader (other thread count) meets the same bad files in the same places.
    const again: BadDataReport[] = [];
    const other = new PretrainLoader(ds, { batchSize: 4, seed: 5, threads: 1, onBadData: (r) => again.push(r), ...views });
    for await (const b of other.epoch(0)) b.release();
    expect(again[0]).toEqual(reports[0]);
    loader.close();
    other.close();
  });

  test('a dataset with no readable image fails with a clear error, not a hang', async () => {
    const ds = Dataset.fromEncoded([Buffer.from('a'), Buffer.alloc(0), Buffer.from('<html>')], { names: ['a.jpg', 'b.jpg', 'c.png'] });
    const loader = new PretrainLoader(ds, { batchSize: 2, threads: 1, maxAttempts: 5, onBadData: () => {}, ...views });
    const it = loader.epoch(0);
    await expect(it.next()).rejects.toThrow(/no readable image after 5 attempts/);
    loader.close();
  });

  test('bad options throw naming the option', async () => {
    expect(() => new PretrainLoader(folder, { batchSize: 0 })).toThrow(/batchSize/);
    expect(() => new PretrainLoader(folder, { batchSize: 4, rank: 2, worldSize: 2 })).toThrow(/rank/);
    expect(() => new PretrainLoader(folder, { batchSize: 64, ...views })).toThrow(/fewer than one batch of 64/);
    const l = new PretrainLoader(folder, { batchSize: 4, threads: 1, ...views });
    await expect(l.epoch(0, { startBatch: 99 }).next()).rejects.toThrow(/startBatch/);
    l.close();
    await expect(l.epoch(0).next()).rejects.toThrow(/closed/);
  });
});

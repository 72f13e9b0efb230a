// Issue 14: `limit` draws a seeded, class-stratified subset, so a class-sorted image folder
// still gives every class its share (not the first images in class order).
import * as fs from 'fs';
import * as path from 'path';
import { Dataset, stratifiedIndices } from '../lib/data';
import { colourFolder, tempDir } from './data-fixtures';

const CLASSES = 10;

function counts(labels: ArrayLike<number>): number[] {
  const c = new Array(CLASSES).fill(0);
  for (let i = 0; i < labels.length; i++) c[labels[i]]++;
  return c;
}

describe('class-stratified subsets', () => {
  test('stratifiedIndices: equal shares, small classes give all they have, seeded, uniform within a class', () => {
    // Class sizes 2, 10, 10 (sorted by class, as a folder is).
    const labels = [0, 0, ...new Array(10).fill(1), ...new Array(10).fill(2)];
    const pick = (n: number, seed: number) => counts(Array.from(stratifiedIndices(labels, n, seed), (i) => labels[i])).slice(0, 3);
    expect(pick(6, 0)).toEqual([2, 2, 2]);
    expect(pick(12, 0)).toEqual([2, 5, 5]);
    const odd = pick(13, 0);
    expect(odd[0]).toBe(2);
    expect(odd[1] + odd[2]).toBe(11);
    expect(Math.abs(odd[1] - odd[2])).toBe(1);
    expect(pick(22, 0)).toEqual([2, 10, 10]);
    expect(Array.from(stratifiedIndices(labels, 9, 3))).toEqual(Array.from(stratifiedIndices(labels, 9, 3)));
    expect(Array.from(stratifiedIndices(labels, 9, 3))).not.toEqual(Array.from(stratifiedIndices(labels, 9, 4)));
    const ix = stratifiedIndices(labels, 9, 5);
    expect(Array.from(ix)).toEqual(Array.from(ix).sort((a, b) => a - b));
    expect(new Set(ix).size).toBe(9);
    // Within class 1 (indices 2..11) a share of 5 is a uniform choice: each image in about half of
    // 2000 draws. Chi-square with 9 degrees of freedom; 27.9 is its 0.999 quantile.
    const hits = new Array(10).fill(0);
    const draws = 2000;
    for (let seed = 0; seed < draws; seed++) for (const i of stratifiedIndices(labels, 12, seed)) if (labels[i] === 1) hits[i - 2]++;
    const expected = draws / 2;
    const chi2 = hits.reduce((a, h) => a + (h - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(27.9);
  });

  describe('a class-sorted image folder (10 classes of PNGs)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = tempDir('strat');
      await colourFolder(path.join(dir, 'train'), 20, 1);
          });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    test('limit yields every class, an equal share each, the same images every time', async () => {
      const ds = await Dataset.openFolder(path.join(dir, 'train'), { cache: false, threads: 1 });
      expect(ds.size).toBe(200);
      const sub = ds.limit(30);
      expect(sub.size).toBe(30);
      expect(counts(sub.labels())).toEqual(new Array(CLASSES).fill(3));
      const uneven = counts(ds.limit(25).labels());
      expect(uneven.every((c) => c === 2 || c === 3)).toBe(true);
      expect(uneven.reduce((a, b) => a + b, 0)).toBe(25);
      const names = (d: Dataset) => Array.from({ length: d.size }, (_, i) => d.path(i));
      expect(names(ds.limit(30))).toEqual(names(sub));
      // The subset's images are those stratifiedIndices names (seed 0), labels and pixels included.
      const ix = stratifiedIndices(ds.labels(), 30, 0);
      expect(names(sub)).toEqual(Array.from(ix, (i) => ds.path(i)));
      expect((await sub.decode(7)).data).toEqual((await ds.decode(ix[7])).data);
    });
  });
});

// Seeded, class-stratified subsets: what `limit` and the kNN memory take from a dataset, so that a
// class-sorted image folder still gives every class its share (no native code; safe to import anywhere).

/** splitmix32-style generator in [0, 1), a pure function of the seed. */
function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** `n` of the indices 0 … labels.length−1 drawn with `seed`, stratified by class: every class
 *  gets an equal share (classes smaller than their share give all they have, and the rest is
 *  shared among the others; the remainder of an uneven split goes to classes chosen at random),
 *  and the members of each class are a uniform random choice. Unlabelled images (label −1) count
 *  as one class. Returned sorted ascending. n ≥ labels.length returns every index. */
export function stratifiedIndices(labels: ArrayLike<number>, n: number, seed = 0): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`stratifiedIndices: n must be an integer >= 0, got ${n}`);
  const total = labels.length;
  if (n >= total) return Int32Array.from({ length: total }, (_, i) => i);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < total; i++) {
    const g = groups.get(labels[i]);
    if (g) g.push(i);
    else groups.set(labels[i], [i]);
  }
  const rnd = seededRandom(seed);
  const classes = [...groups.keys()].sort((a, b) => a - b);
  // Water-filling: classes that cannot fill an equal share take everything they have.
  const quota = new Map<number, number>();
  let open = classes.slice(), left = n;
  for (;;) {
    const share = Math.floor(left / open.length);
    const small = open.filter((c) => groups.get(c)!.length <= share);
    if (small.length === 0) break;
    for (const c of small) {
      quota.set(c, groups.get(c)!.length);
      left -= groups.get(c)!.length;
    }
    open = open.filter((c) => groups.get(c)!.length > share);
    if (open.length === 0) break;
  }
  if (open.length > 0) {
    const share = Math.floor(left / open.length);
    for (const c of open) quota.set(c, share);
    // The remainder: one more image for `left mod open` classes chosen at random (each has > share).
    const extra = open.slice();
    for (let i = extra.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [extra[i], extra[j]] = [extra[j], extra[i]];
    }
    for (let k = 0; k < left - share * open.length; k++) quota.set(extra[k], share + 1);
  }
  const out: number[] = [];
  for (const c of classes) {
    const g = groups.get(c)!, q = quota.get(c)!;
    // Partial Fisher–Yates: the first q entries become a uniform random q-subset.
    for (let i = 0; i < q; i++) {
      const j = i + Math.floor(rnd() * (g.length - i));
      [g[i], g[j]] = [g[j], g[i]];
      out.push(g[i]);
    }
  }
  return Int32Array.from(out).sort();
}

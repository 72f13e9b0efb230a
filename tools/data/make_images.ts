// Writes an ImageNet-like image folder for benchmarks: JPEGs of about 500x375 (ImageNet's typical
// size and aspect ratios), quality 90, 4:2:0, with natural-image-like content (smooth colour
// fields, shapes with edges, fine texture), so decode cost and file size (~60–150 kB) are
// representative.
//   tsx tools/data/make_images.ts --out /tmp/m2t-bench-images --count 400 --classes 10
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

const SIZES: [number, number][] = [[500, 375], [500, 375], [500, 375], [375, 500], [500, 333], [500, 400], [400, 300], [500, 500]];

function rng(seed: number): () => number {
  let a = (seed * 0x9e3779b1) | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function naturalImage(width: number, height: number, seed: number): Buffer {
  const r = rng(seed);
  const px = new Float32Array(width * height * 3);
  // Low-frequency colour field: a few random waves per channel.
  const waves = Array.from({ length: 4 }, () => ({ fx: r() * 4, fy: r() * 4, ph: r() * 6.28, amp: 20 + r() * 40, c: [r(), r(), r()] }));
  const base = [60 + r() * 120, 60 + r() * 120, 60 + r() * 120];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        let v = base[c];
        for (const w of waves) v += w.amp * w.c[c] * Math.sin((w.fx * x) / width * 6.28 + (w.fy * y) / height * 6.28 + w.ph);
        px[i + c] = v;
      }
    }
  // Shapes with hard edges and their own shading.
  for (let s = 0; s < 12; s++) {
    const cx = r() * width, cy = r() * height, rx = 15 + r() * width * 0.25, ry = 15 + r() * height * 0.25;
    const col = [r() * 255, r() * 255, r() * 255];
    const ellipse = r() < 0.5;
    for (let y = Math.max(0, Math.floor(cy - ry)); y < Math.min(height, cy + ry); y++)
      for (let x = Math.max(0, Math.floor(cx - rx)); x < Math.min(width, cx + rx); x++) {
        const dx = (x - cx) / rx, dy = (y - cy) / ry;
        if (ellipse && dx * dx + dy * dy > 1) continue;
        const shade = 0.75 + 0.25 * dx;
        const i = (y * width + x) * 3;
        for (let c = 0; c < 3; c++) px[i + c] = col[c] * shade;
      }
  }
  // Fine texture (grain, foliage-like detail) and clipping.
  const out = Buffer.alloc(width * height * 3);
  for (let i = 0; i < px.length; i += 3) {
    const g = (r() - 0.5) * 40;
    for (let c = 0; c < 3; c++) out[i + c] = Math.max(0, Math.min(255, Math.round(px[i + c] + g + (r() - 0.5) * 10)));
  }
  return out;
}

export async function makeBenchFolder(dir: string, count: number, classes: number): Promise<void> {
  for (let k = 0; k < count; k++) {
    const [w, h] = SIZES[k % SIZES.length];
    const file = path.join(dir, `n${String(k % classes).padStart(8, '0')}`, `img_${String(k).padStart(6, '0')}.JPEG`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await sharp(naturalImage(w, h, k + 1), { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 90, chromaSubsampling: '4:2:0' })
      .toFile(file);
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const get = (k: string, d: string) => {
    const i = args.indexOf(k);
    return i >= 0 ? args[i + 1] : d;
  };
  const out = get('--out', '/tmp/m2t-bench-images');
  makeBenchFolder(out, Number(get('--count', '400')), Number(get('--classes', '10'))).then(() => console.log(`wrote ${out}`));
}

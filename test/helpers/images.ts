// A tiny generated image-folder dataset (PNG files written with sharp), for end-to-end runs.
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

/** `<root>/<split>/class_<c>/<i>.png`: `perClass` images per class per split, sizes 36–51 px,
 *  a class-dependent colour pattern so that a linear probe has something to find. */
export async function makeImageFolder(root: string, o: { classes?: number; train?: number; val?: number } = {}): Promise<{ train: string; val: string }> {
  const classes = o.classes ?? 4;
  const counts = { train: o.train ?? 8, val: o.val ?? 3 };
  for (const split of ['train', 'val'] as const)
    for (let c = 0; c < classes; c++)
      for (let i = 0; i < counts[split]; i++) {
        const seed = c * 1000 + i + (split === 'val' ? 500 : 0);
        const w = 36 + ((seed * 7) % 16);
        const h = 36 + ((seed * 5) % 12);
        const px = Buffer.alloc(w * h * 3);
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            for (let k = 0; k < 3; k++) {
              const v = 128 + 90 * Math.sin(((c + 1) * (x + 2 * y)) / 9 + k * c + (seed % 7)) + 20 * Math.cos((x * y + seed) / 13);
              px[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(v)));
            }
        const file = path.join(root, split, `class_${c}`, `${String(i).padStart(3, '0')}.png`);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file);
      }
  return { train: path.join(root, 'train'), val: path.join(root, 'val') };
}

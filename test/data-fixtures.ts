// Image files for the data-layer tests, written with sharp into a temp dir.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

/** A deterministic colourful test image: smooth waves plus blocks, RGB bytes. */
export function synthRgb(width: number, height: number, seed: number): Buffer {
  const px = Buffer.alloc(width * height * 3);
  let s = seed * 2654435761 + 1;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const f = [rnd() * 6 + 1, rnd() * 6 + 1, rnd() * 6 + 1];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) {
        const v = 128 + 100 * Math.sin((f[c] * x) / width * Math.PI * 2 + (c + 1) * (y / height) * 3 + seed) + (((x >> 3) + (y >> 3)) % 2 ? 20 : -20);
        px[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
  return px;
}

export async function jpeg(width: number, height: number, seed: number, o: { gray?: boolean; cmyk?: boolean } = {}): Promise<Buffer> {
  let img = sharp(synthRgb(width, height, seed), { raw: { width, height, channels: 3 } });
  if (o.gray) img = img.grayscale();
  if (o.cmyk) img = img.toColourspace('cmyk');
  return img.jpeg({ quality: 90 }).toBuffer();
}

export async function png(width: number, height: number, seed: number, o: { palette?: boolean; alpha?: boolean; gray?: boolean } = {}): Promise<Buffer> {
  let img = sharp(synthRgb(width, height, seed), { raw: { width, height, channels: 3 } });
  if (o.alpha) img = img.ensureAlpha(0.5);
  if (o.gray) img = img.grayscale();
  return img.png({ palette: o.palette ?? false }).toBuffer();
}

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `m2t-${tag}-`));
}

export function write(file: string, bytes: Buffer | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}

/** A small image folder: `classes` classes × `perClass` images, JPEGs and PNGs mixed, sizes vary. */
export async function makeFolder(root: string, classes = 3, perClass = 6): Promise<void> {
  for (let c = 0; c < classes; c++)
    for (let i = 0; i < perClass; i++) {
      const seed = c * 100 + i;
      const w = 48 + ((seed * 7) % 40), h = 40 + ((seed * 13) % 36);
      const file = path.join(root, `class_${c}`, `img_${String(i).padStart(3, '0')}.${i % 3 === 2 ? 'png' : i % 3 === 1 ? 'JPG' : 'jpeg'}`);
      write(file, i % 3 === 2 ? await png(w, h, seed) : await jpeg(w, h, seed));
    }
}

/** Directories' mtimes moved into the past (a dataset copied a while ago), so the index cache trusts them. */
export function age(root: string): void {
  const t = new Date(Date.now() - 100_000);
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
    fs.utimesSync(d, t, t);
  };
  walk(root);
}

/** Ten colours far apart: the classes of colourFolder. */
const PALETTE = [
  [230, 25, 25], [25, 230, 25], [25, 25, 230], [230, 230, 25], [230, 25, 230],
  [25, 230, 230], [240, 240, 240], [15, 15, 15], [240, 130, 20], [120, 60, 200],
];

/** A class-sorted image folder of easily separable classes: `perClass` 16x16 PNGs per class, the
 *  class's colour plus noise, in class_0 … class_9. */
export async function colourFolder(root: string, perClass: number, seed: number): Promise<void> {
  let s = seed >>> 0 || 1;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let c = 0; c < PALETTE.length; c++) {
    fs.mkdirSync(path.join(root, `class_${c}`), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = Buffer.alloc(16 * 16 * 3);
      for (let p = 0; p < 16 * 16; p++)
        for (let ch = 0; ch < 3; ch++) px[p * 3 + ch] = Math.max(0, Math.min(255, Math.round(PALETTE[c][ch] + 30 * (r() - 0.5))));
      await sharp(px, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(root, `class_${c}`, `img_${String(i).padStart(3, '0')}.png`));
    }
  }
}

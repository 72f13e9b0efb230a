// A PNG grid of dataset images beside their two augmented views, to eyeball an augmentation.
import sharp from 'sharp';
import { Dataset } from './datasets';
import { ViewTransform, byolView1, byolView2 } from './transforms';

export interface PreviewOptions {
  /** Images (rows). Default 8. */
  count?: number;
  /** Which images; default: `count` spread evenly over the dataset. */
  indices?: number[];
  /** The views to show beside each image. Default byolView1() and byolView2(). */
  views?: ViewTransform[];
  seed?: number;
  epoch?: number;
  /** Side of each grid cell in pixels. Default: the first view's width. */
  cell?: number;
  /** Pixels between cells. Default 4. */
  gap?: number;
}

export interface PreviewGrid {
  png: Buffer;
  width: number;
  height: number;
  rows: { index: number; path: string }[];
}

/** Renders the grid: one row per image — the image (fitted into a cell), then its views. */
export async function renderPreview(dataset: Dataset, o: PreviewOptions = {}): Promise<PreviewGrid> {
  const views = o.views ?? [byolView1(), byolView2()];
  const count = Math.min(o.count ?? 8, dataset.size);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`preview: count must be a positive integer, got ${o.count}`);
  const indices = o.indices ?? Array.from({ length: count }, (_, k) => Math.floor((k * dataset.size) / count));
  for (const i of indices)
    if (!Number.isInteger(i) || i < 0 || i >= dataset.size) throw new RangeError(`preview: index ${i} is not in [0, ${dataset.size})`);
  const cell = o.cell ?? views[0].size[1];
  const gap = o.gap ?? 4;
  const cols = 1 + views.length;
  const width = cols * cell + (cols + 1) * gap;
  const height = indices.length * cell + (indices.length + 1) * gap;
  const tiles: sharp.OverlayOptions[] = [];
  const rows: PreviewGrid['rows'] = [];
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r];
    rows.push({ index: i, path: dataset.path(i) });
    const top = gap + r * (cell + gap);
    const images = [await dataset.decode(i), ...(await dataset.augment(i, views, { seed: o.seed ?? 0, epoch: o.epoch ?? 0 }))];
    for (let c = 0; c < images.length; c++) {
      const im = images[c];
      const tile = await sharp(Buffer.from(im.data.buffer, im.data.byteOffset, im.data.byteLength), {
        raw: { width: im.width, height: im.height, channels: 3 },
      })
        .resize(cell, cell, { fit: 'contain', background: { r: 32, g: 32, b: 32 }, kernel: c === 0 ? 'lanczos3' : 'nearest' })
        .raw()
        .toBuffer();
      tiles.push({ input: tile, raw: { width: cell, height: cell, channels: 3 }, left: gap + c * (cell + gap), top });
    }
  }
  const png = await sharp({ create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite(tiles)
    .png()
    .toBuffer();
  return { png, width, height, rows };
}

/** Writes renderPreview's grid to `out` (PNG). */
export async function writePreview(dataset: Dataset, out: string, o: PreviewOptions = {}): Promise<PreviewGrid> {
  const g = await renderPreview(dataset, o);
  await sharp(g.png).toFile(out);
  return g;
}

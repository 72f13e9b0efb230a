// Line plots of a run's metrics: a Vega-Lite spec per series, compiled to Vega, rendered to SVG
// headless (no canvas) and rasterised to PNG by sharp (librsvg). Offline: no fonts or data fetched.
import sharp from 'sharp';

export interface SeriesPoint {
  iteration: number;
  value: number;
}

export interface PlotSpec {
  /** File name stem and the metric's key in metrics.jsonl. */
  key: string;
  title: string;
  /** The y axis' label. */
  unit: string;
  /** The points drawn (the spec's data values). */
  values: SeriesPoint[];
  logScale?: boolean;
}

export interface PlotSize {
  width: number;
  height: number;
}

/** The stride `thin` keeps every k-th point with (1 when all fit). */
export function thinStride(n: number, max: number): number {
  return n <= max ? 1 : Math.ceil(n / Math.max(1, max - 1));
}

/** At most `max` points, every k-th one (values stay the metric's own; the last point is kept). */
export function thin(points: SeriesPoint[], max: number): SeriesPoint[] {
  if (points.length <= max) return points;
  const k = thinStride(points.length, max);
  const out = points.filter((_, i) => i % k === 0);
  if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]);
  return out;
}

/** The Vega-Lite spec of one series: a line over iterations (points when there are few). */
export function vegaLiteSpec(p: PlotSpec, size: PlotSize): Record<string, unknown> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: p.title,
    width: size.width,
    height: size.height,
    // The whole PNG is width x height: the axes and title fit inside.
    autosize: { type: 'fit', contains: 'padding' },
    background: 'white',
    data: { values: p.values },
    mark: { type: 'line', point: p.values.length <= 40, tooltip: false },
    encoding: {
      x: { field: 'iteration', type: 'quantitative', title: 'iteration' },
      y: {
        field: 'value',
        type: 'quantitative',
        title: p.unit,
        scale: p.logScale ? { type: 'log' } : { zero: false },
      },
    },
    config: { font: 'sans-serif' },
  };
}

/** SVG text of a Vega-Lite spec. */
export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const vega = require('vega') as typeof import('vega');
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const vl = require('vega-lite') as typeof import('vega-lite');
  const compiled = vl.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A PNG of the plot, exactly `size` pixels. */
export async function renderPng(p: PlotSpec, size: PlotSize): Promise<Buffer> {
  const svg = await renderSvg(vegaLiteSpec(p, size));
  // librsvg renders at the SVG's own size (72 dpi, 1 unit = 1 px); pin it in case text overflowed.
  return sharp(Buffer.from(svg)).resize(size.width, size.height, { fit: 'contain', background: '#ffffff' }).flatten({ background: '#ffffff' }).png().toBuffer();
}

// View transforms (spec §7): what one augmented view of an image is. Plain data, validated here
// with messages naming the field; the native pipeline applies them (lib/data never touches pixels).

export type Pair = [number, number];
export type Rgb = [number, number, number];

export const IMAGENET_MEAN: Rgb = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Rgb = [0.229, 0.224, 0.225];

/** One view, fully specified. Build one with a preset (`byolView1()` …) and overrides. */
export interface ViewTransform {
  /** Output [height, width] in pixels. */
  size: Pair;
  /** 'random-resized': RandomResizedCrop(scale, ratio); 'center': resize the shorter side to
   *  `resize` (0: no resize), then centre-crop `size` (zero padding if the image is smaller). */
  crop: 'random-resized' | 'center';
  /** RandomResizedCrop area fraction range. */
  scale: Pair;
  /** RandomResizedCrop aspect-ratio range (drawn log-uniformly). */
  ratio: Pair;
  resize: number;
  /** ColorJitter applied with probability p, in a random order; factors brightness/contrast/
   *  saturation ~ U(max(0, 1−s), 1+s), hue shift ~ U(−h, h); a strength of 0 skips that adjustment. */
  jitter: { p: number; brightness: number; contrast: number; saturation: number; hue: number };
  /** PIL GaussianBlur with σ ~ U(sigma) applied with probability p. */
  blur: { p: number; sigma: Pair };
  /** RandomGrayscale probability. */
  grayscale: number;
  /** Horizontal flip probability. */
  flip: number;
  /** Solarize (v ≥ threshold → 255 − v) with probability p. */
  solarize: { p: number; threshold: number };
  /** Normalisation after scaling to [0, 1]. */
  mean: Rgb;
  std: Rgb;
  /** Let JPEG decoding downscale in the DCT domain (1/2, 1/4, 1/8) when every crop of the image
   *  still has at least the output's pixels. Faster on large images; pixels then differ slightly
   *  from a full-size decode. Default true. */
  scaledDecode: boolean;
}

/** Overrides of a preset: any field, nested objects partially; `size` may be one number. */
export interface ViewOverrides {
  size?: number | Pair;
  crop?: ViewTransform['crop'];
  scale?: Pair;
  ratio?: Pair;
  resize?: number;
  jitter?: Partial<ViewTransform['jitter']>;
  blur?: Partial<ViewTransform['blur']>;
  grayscale?: number;
  flip?: number;
  solarize?: Partial<ViewTransform['solarize']>;
  mean?: Rgb;
  std?: Rgb;
  scaledDecode?: boolean;
}

const NONE: ViewTransform = {
  size: [224, 224],
  crop: 'random-resized',
  scale: [0.08, 1.0],
  ratio: [3 / 4, 4 / 3],
  resize: 256,
  jitter: { p: 0, brightness: 0, contrast: 0, saturation: 0, hue: 0 },
  blur: { p: 0, sigma: [0.1, 2.0] },
  grayscale: 0,
  flip: 0,
  solarize: { p: 0, threshold: 128 },
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  scaledDecode: true,
};

/** Applies overrides to a transform and validates the result (throws naming the field). */
export function withOverrides(base: ViewTransform, o: ViewOverrides = {}, where = 'view'): ViewTransform {
  const known = new Set(Object.keys(NONE));
  for (const k of Object.keys(o)) if (!known.has(k)) throw new TypeError(`${where}: unknown option '${k}'`);
  const t: ViewTransform = {
    ...base,
    ...(o as object),
    size: o.size === undefined ? base.size : typeof o.size === 'number' ? [o.size, o.size] : o.size,
    jitter: { ...base.jitter, ...o.jitter },
    blur: { ...base.blur, ...o.blur },
    solarize: { ...base.solarize, ...o.solarize },
  } as ViewTransform;
  validateView(t, where);
  return t;
}

/** Spec §7 view 1 ("q"): RandomResizedCrop, jitter p 0.8, blur p 1.0, grayscale 0.2, flip 0.5. */
export function byolView1(o: ViewOverrides = {}): ViewTransform {
  return withOverrides(
    { ...NONE, jitter: { p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 }, blur: { p: 1.0, sigma: [0.1, 2.0] }, grayscale: 0.2, flip: 0.5 },
    o,
    'view1',
  );
}

/** Spec §7 view 2 ("k"): as view 1 but blur p 0.1 and solarize p 0.2. */
export function byolView2(o: ViewOverrides = {}): ViewTransform {
  return withOverrides({ ...byolView1(), blur: { p: 0.1, sigma: [0.1, 2.0] }, solarize: { p: 0.2, threshold: 128 } }, o, 'view2');
}

/** Linear-evaluation training: RandomResizedCrop + flip + normalise. */
export function linearEvalTransform(o: ViewOverrides = {}): ViewTransform {
  return withOverrides({ ...NONE, flip: 0.5 }, o, 'linearEval');
}

/** Validation: resize the shorter side to 256, centre-crop 224, normalise. */
export function validationTransform(o: ViewOverrides = {}): ViewTransform {
  return withOverrides({ ...NONE, crop: 'center', resize: 256 }, o, 'validation');
}

function fail(where: string, field: string, what: string, got: unknown): never {
  throw new RangeError(`${where}.${field} must be ${what}, got ${JSON.stringify(got)}`);
}

function checkPair(where: string, field: string, v: unknown, lo: number, hi: number): void {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
    throw new TypeError(`${where}.${field} must be [min, max] numbers, got ${JSON.stringify(v)}`);
  if (!(v[0] >= lo && v[0] <= v[1] && v[1] <= hi)) fail(where, field, `[min, max] with ${lo} <= min <= max <= ${hi}`, v);
}

function checkProb(where: string, field: string, v: unknown): void {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(where, field, 'a probability in [0, 1]', v);
}

export function validateView(t: ViewTransform, where = 'view'): void {
  const [h, w] = t.size;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1 || h > 16384 || w > 16384)
    fail(where, 'size', 'an integer or [height, width] in [1, 16384]', t.size);
  if (t.crop !== 'random-resized' && t.crop !== 'center') fail(where, 'crop', "'random-resized' or 'center'", t.crop);
  checkPair(where, 'scale', t.scale, Number.MIN_VALUE, Infinity);
  checkPair(where, 'ratio', t.ratio, Number.MIN_VALUE, Infinity);
  if (!Number.isInteger(t.resize) || t.resize < 0 || t.resize > 65536) fail(where, 'resize', 'an integer in [0, 65536]', t.resize);
  checkProb(where, 'jitter.p', t.jitter.p);
  for (const k of ['brightness', 'contrast', 'saturation'] as const) {
    const v = t.jitter[k];
    if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) fail(where, `jitter.${k}`, 'a number >= 0', v);
  }
  if (typeof t.jitter.hue !== 'number' || !(t.jitter.hue >= 0 && t.jitter.hue <= 0.5)) fail(where, 'jitter.hue', 'in [0, 0.5]', t.jitter.hue);
  checkProb(where, 'blur.p', t.blur.p);
  checkPair(where, 'blur.sigma', t.blur.sigma, Number.MIN_VALUE, Infinity);
  checkProb(where, 'grayscale', t.grayscale);
  checkProb(where, 'flip', t.flip);
  checkProb(where, 'solarize.p', t.solarize.p);
  if (!Number.isInteger(t.solarize.threshold) || t.solarize.threshold < 0 || t.solarize.threshold > 256)
    fail(where, 'solarize.threshold', 'an integer in [0, 256]', t.solarize.threshold);
  for (const k of ['mean', 'std'] as const) {
    const v = t[k];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw new TypeError(`${where}.${k} must be three numbers, got ${JSON.stringify(v)}`);
  }
  if (t.std.some((x) => x === 0)) fail(where, 'std', 'non-zero', t.std);
  if (typeof t.scaledDecode !== 'boolean') throw new TypeError(`${where}.scaledDecode must be a boolean`);
}

/** The flat form the native binding reads. */
export interface NativeView {
  size: Pair;
  crop: string;
  scale: Pair;
  ratio: Pair;
  resize: number;
  jitterP: number;
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
  blurP: number;
  sigma: Pair;
  grayscaleP: number;
  flipP: number;
  solarizeP: number;
  solarizeThreshold: number;
  mean: Rgb;
  std: Rgb;
  scaledDecode: boolean;
}

export function toNativeView(t: ViewTransform): NativeView {
  return {
    size: t.size,
    crop: t.crop,
    scale: t.scale,
    ratio: t.ratio,
    resize: t.resize,
    jitterP: t.jitter.p,
    brightness: t.jitter.brightness,
    contrast: t.jitter.contrast,
    saturation: t.jitter.saturation,
    hue: t.jitter.hue,
    blurP: t.blur.p,
    sigma: t.blur.sigma,
    grayscaleP: t.grayscale,
    flipP: t.flip,
    solarizeP: t.solarize.p,
    solarizeThreshold: t.solarize.threshold,
    mean: t.mean,
    std: t.std,
    scaledDecode: t.scaledDecode,
  };
}

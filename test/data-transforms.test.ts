// View transform presets (spec §7), overrides and validation.
import { byolView1, byolView2, linearEvalTransform, toNativeView, validationTransform, withOverrides } from '../lib/data';

describe('view presets', () => {
  test('view 1 and view 2 follow spec §7', () => {
    const v1 = byolView1(), v2 = byolView2();
    expect(v1.size).toEqual([224, 224]);
    expect(v1.crop).toBe('random-resized');
    expect(v1.scale).toEqual([0.08, 1]);
    expect(v1.ratio[0]).toBeCloseTo(3 / 4);
    expect(v1.ratio[1]).toBeCloseTo(4 / 3);
    expect(v1.jitter).toEqual({ p: 0.8, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 });
    expect(v1.blur).toEqual({ p: 1.0, sigma: [0.1, 2.0] });
    expect([v1.grayscale, v1.flip, v1.solarize.p]).toEqual([0.2, 0.5, 0]);
    expect(v2.blur.p).toBe(0.1);
    expect(v2.solarize).toEqual({ p: 0.2, threshold: 128 });
    expect(v1.mean).toEqual([0.485, 0.456, 0.406]);
    expect(v1.std).toEqual([0.229, 0.224, 0.225]);
  });

  test('linear-eval and validation transforms', () => {
    const t = linearEvalTransform(), v = validationTransform();
    expect([t.crop, t.flip, t.jitter.p, t.blur.p, t.grayscale]).toEqual(['random-resized', 0.5, 0, 0, 0]);
    expect([v.crop, v.resize, v.size, v.flip]).toEqual(['center', 256, [224, 224], 0]);
  });

  test('every parameter can be overridden, e.g. for 28 px MNIST', () => {
    const v = byolView2({ size: 28, scale: [0.3, 1], jitter: { p: 0.5, hue: 0 }, blur: { sigma: [0.1, 0.5] }, mean: [0.13, 0.13, 0.13], std: [0.31, 0.31, 0.31] });
    expect(v.size).toEqual([28, 28]);
    expect(v.jitter).toEqual({ p: 0.5, brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0 });
    expect(v.blur).toEqual({ p: 0.1, sigma: [0.1, 0.5] });
    const n = toNativeView(v);
    expect(n).toMatchObject({ size: [28, 28], jitterP: 0.5, hue: 0, blurP: 0.1, sigma: [0.1, 0.5], solarizeP: 0.2, grayscaleP: 0.2, flipP: 0.5 });
    expect(validationTransform({ size: [32, 40], resize: 36 }).size).toEqual([32, 40]);
  });

  test('bad values are rejected naming the field', () => {
    expect(() => byolView1({ flip: 1.5 })).toThrow(/view1\.flip must be a probability/);
    expect(() => byolView2({ jitter: { hue: 0.7 } })).toThrow(/view2\.jitter\.hue/);
    expect(() => byolView1({ scale: [0.9, 0.1] })).toThrow(/view1\.scale/);
    expect(() => validationTransform({ size: 0 })).toThrow(/validation\.size/);
    expect(() => byolView1({ std: [1, 0, 1] })).toThrow(/view1\.std must be non-zero/);
    expect(() => withOverrides(byolView1(), { colour: 1 } as never)).toThrow(/unknown option 'colour'/);
  });
});

// Compiled with -ffp-contract=off: PIL's float expressions must not be fused into FMAs, or
// truncation to 8 bits would differ by one level now and then.
#include "color.h"

#include <algorithm>
#include <cmath>

namespace m2t::data {

namespace {
void apply_lut(Image& im, const uint8_t lut[256]) {
  for (uint8_t& v : im.pixels) v = lut[v];
}
}  // namespace

void adjust_brightness(Image& im, float factor) {
  if (factor == 1.0f) return;
  uint8_t lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = blend8(0, v, factor);
  apply_lut(im, lut);
}

void adjust_contrast(Image& im, float factor) {
  // ImageStat mean of the "L" image, then int(mean + 0.5).
  uint64_t sum = 0;
  const uint8_t* p = im.pixels.data();
  const size_t n = size_t(im.width) * im.height;
  for (size_t i = 0; i < n; ++i, p += 3) sum += luma(p[0], p[1], p[2]);
  const double mean = n ? double(sum) / double(n) : 0.0;
  const int m = static_cast<int>(mean + 0.5);
  if (factor == 1.0f) return;
  uint8_t lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = blend8(m, v, factor);
  apply_lut(im, lut);
}

void adjust_saturation(Image& im, float factor) {
  if (factor == 1.0f) return;
  uint8_t* p = im.pixels.data();
  const size_t n = size_t(im.width) * im.height;
  for (size_t i = 0; i < n; ++i, p += 3) {
    const int l = luma(p[0], p[1], p[2]);
    p[0] = blend8(l, p[0], factor);
    p[1] = blend8(l, p[1], factor);
    p[2] = blend8(l, p[2], factor);
  }
}

// colorsys-style conversion with PIL's mix of float and double arithmetic, kept verbatim in
// precision (each cast below is where PIL stores to a float variable).
void rgb_to_hsv(const uint8_t rgb[3], uint8_t hsv[3]) {
  const int r = rgb[0], g = rgb[1], b = rgb[2];
  const int maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  hsv[2] = static_cast<uint8_t>(maxc);
  if (maxc == minc) {
    hsv[0] = hsv[1] = 0;
    return;
  }
  const float cr = static_cast<float>(maxc - minc);
  const float s = cr / static_cast<float>(maxc);
  const float rc = static_cast<float>(maxc - r) / cr;
  const float gc = static_cast<float>(maxc - g) / cr;
  const float bc = static_cast<float>(maxc - b) / cr;
  float h;
  if (r == maxc) h = bc - gc;
  else if (g == maxc) h = static_cast<float>(2.0 + rc - bc);
  else h = static_cast<float>(4.0 + gc - rc);
  h = static_cast<float>(std::fmod(h / 6.0 + 1.0, 1.0));
  const int ih = static_cast<int>(h * 255.0), is = static_cast<int>(s * 255.0);
  hsv[0] = static_cast<uint8_t>(std::clamp(ih, 0, 255));
  hsv[1] = static_cast<uint8_t>(std::clamp(is, 0, 255));
}

void hsv_to_rgb(const uint8_t hsv[3], uint8_t rgb[3]) {
  const int h = hsv[0], s = hsv[1], v = hsv[2];
  if (s == 0) {
    rgb[0] = rgb[1] = rgb[2] = static_cast<uint8_t>(v);
    return;
  }
  const int i = static_cast<int>(std::floor(static_cast<float>(h) * 6.0 / 255.0));
  const float f = static_cast<float>(static_cast<float>(h) * 6.0 / 255.0 - static_cast<float>(i));
  const float fs = static_cast<float>(static_cast<float>(s) / 255.0);
  const float fv = static_cast<float>(v);
  const int p = static_cast<int>(std::round(fv * (1.0 - fs)));
  const int q = static_cast<int>(std::round(fv * (1.0 - fs * f)));  // fs·f in float, as PIL
  const int t = static_cast<int>(std::round(fv * (1.0 - fs * (1.0 - f))));
  const auto c8 = [](int x) { return static_cast<uint8_t>(std::clamp(x, 0, 255)); };
  const uint8_t up = c8(p), uq = c8(q), ut = c8(t), uv = static_cast<uint8_t>(v);
  switch (i % 6) {
    case 0: rgb[0] = uv; rgb[1] = ut; rgb[2] = up; break;
    case 1: rgb[0] = uq; rgb[1] = uv; rgb[2] = up; break;
    case 2: rgb[0] = up; rgb[1] = uv; rgb[2] = ut; break;
    case 3: rgb[0] = up; rgb[1] = uq; rgb[2] = uv; break;
    case 4: rgb[0] = ut; rgb[1] = up; rgb[2] = uv; break;
    default: rgb[0] = uv; rgb[1] = up; rgb[2] = uq; break;
  }
}

void adjust_hue(Image& im, float hue) {
  // np.int32(hue·255) truncates toward zero; adding it as uint8 wraps around the hue circle.
  const uint8_t shift = static_cast<uint8_t>(static_cast<int32_t>(hue * 255.0));
  uint8_t* p = im.pixels.data();
  const size_t n = size_t(im.width) * im.height;
  uint8_t hsv[3];
  for (size_t i = 0; i < n; ++i, p += 3) {
    rgb_to_hsv(p, hsv);
    hsv[0] = static_cast<uint8_t>(hsv[0] + shift);
    hsv_to_rgb(hsv, p);
  }
}

void to_grayscale(Image& im) {
  uint8_t* p = im.pixels.data();
  const size_t n = size_t(im.width) * im.height;
  for (size_t i = 0; i < n; ++i, p += 3) p[0] = p[1] = p[2] = luma(p[0], p[1], p[2]);
}

void solarize(Image& im, int threshold) {
  uint8_t lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v < threshold ? v : 255 - v);
  apply_lut(im, lut);
}

}  // namespace m2t::data

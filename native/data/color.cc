// Compiled with -ffp-contract=off: PIL's float expressions must not be fused into FMAs, or
// truncation to 8 bits would differ by one level now and then.
#include "color.h"
#include "core/cpu_dispatch.h"

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

M2T_CPU_CLONES void adjust_contrast(Image& im, float factor) {
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

M2T_CPU_CLONES void adjust_saturation(Image& im, float factor) {
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

namespace {

// PIL's rgb2hsv for one pixel as straight-line arithmetic (every branch computed, one selected),
// so that the loop over pixels vectorises. Same operations in the same precision as above, hence
// bit-identical: the min channel's (max − x)/cr is exactly 1 and the max channel's 0 either way;
// fmod(x, 1) for x = h/6 + 1 ∈ [5/6, 11/6] is x − 1 or x exactly (Sterbenz).
inline void hsv_of(int r, int g, int b, int& h_out, int& s_out) {
  const int mx = std::max(r, std::max(g, b)), mn = std::min(r, std::min(g, b));
  const int c = mx - mn;
  const float cr = static_cast<float>(c == 0 ? 1 : c);
  const float rc = static_cast<float>(mx - r) / cr;
  const float gc = static_cast<float>(mx - g) / cr;
  const float bc = static_cast<float>(mx - b) / cr;
  const float hr = bc - gc;
  const float hg = static_cast<float>(2.0 + rc - bc);
  const float hb = static_cast<float>(4.0 + gc - rc);
  const float h = r == mx ? hr : (g == mx ? hg : hb);
  double x = h / 6.0 + 1.0;
  x = x >= 1.0 ? x - 1.0 : x;
  const int ih = static_cast<int>(static_cast<float>(x) * 255.0);
  const float s = static_cast<float>(c) / static_cast<float>(mx == 0 ? 1 : mx);
  const int is = static_cast<int>(s * 255.0);
  h_out = c == 0 ? 0 : std::clamp(ih, 0, 255);
  s_out = c == 0 ? 0 : std::clamp(is, 0, 255);
}

inline int round_away(double x) {  // C round() for x >= 0: trunc, then up if the rest is ≥ ½
  const double t = std::trunc(x);
  return static_cast<int>(t) + (x - t >= 0.5 ? 1 : 0);
}

// PIL's hsv2rgb likewise: all of p, q, t computed, the sector picks the channel order.
inline void rgb_of(int h, int s, int v, int32_t& r, int32_t& g, int32_t& b) {
  const double hx = static_cast<float>(h) * 6.0 / 255.0;
  const int i = static_cast<int>(std::floor(hx));
  const float f = static_cast<float>(hx - static_cast<float>(i));
  const float fs = static_cast<float>(static_cast<float>(s) / 255.0);
  const float fv = static_cast<float>(v);
  const int p = std::min(round_away(fv * (1.0 - fs)), 255);
  const int q = std::min(round_away(fv * (1.0 - fs * f)), 255);
  const int t = std::min(round_away(fv * (1.0 - fs * (1.0 - f))), 255);
  // Channel order per sector i (0…5; 6 only for h = 255, like 0): r, g, b take
  // (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q); s = 0 means grey (v,v,v). Selected with
  // bit masks (eq: −1 if equal, else 0) so that the loop stays branch-free and vectorises.
  const auto eq = [](int a, int b) { return ((a ^ b) - 1) >> 31; };
  const int grey = eq(s, 0);
  const int e0 = eq(i, 0) | eq(i, 6), e1 = eq(i, 1), e2 = eq(i, 2), e3 = eq(i, 3), e4 = eq(i, 4), e5 = eq(i, 5);
  const int rv = (e0 | e5) | grey, rq = e1 & ~grey, rt = e4 & ~grey, rp = ~(rv | rq | rt);
  const int gv = (e1 | e2) | grey, gq = e3 & ~grey, gt = e0 & ~grey, gp = ~(gv | gq | gt);
  const int bv = (e3 | e4) | grey, bq = e5 & ~grey, bt = e2 & ~grey, bp = ~(bv | bq | bt);
  const int rr = (v & rv) | (q & rq) | (t & rt) | (p & rp);
  const int gg = (v & gv) | (q & gq) | (t & gt) | (p & gp);
  const int bb = (v & bv) | (q & bq) | (t & bt) | (p & bp);
  r = rr;
  g = gg;
  b = bb;
}

}  // namespace

M2T_CPU_CLONES void adjust_hue(Image& im, float hue) {
  // np.int32(hue·255) truncates toward zero; adding it as uint8 wraps around the hue circle.
  const int shift = static_cast<uint8_t>(static_cast<int32_t>(hue * 255.0));
  uint8_t* p = im.pixels.data();
  const size_t n = size_t(im.width) * im.height;
  // Blocks of planar bytes keep both loops free of interleaved access, so they vectorise.
  constexpr size_t kBlock = 256;
  int32_t R[kBlock], G[kBlock], B[kBlock], H[kBlock], S[kBlock], V[kBlock], Ro[kBlock], Go[kBlock], Bo[kBlock];
  for (size_t base = 0; base < n; base += kBlock) {
    const size_t m = std::min(kBlock, n - base);
    uint8_t* q = p + base * 3;
    for (size_t k = 0; k < m; ++k) {
      R[k] = q[k * 3];
      G[k] = q[k * 3 + 1];
      B[k] = q[k * 3 + 2];
    }
    for (size_t k = 0; k < m; ++k) {
      hsv_of(R[k], G[k], B[k], H[k], S[k]);
      V[k] = std::max(R[k], std::max(G[k], B[k]));
    }
    for (size_t k = 0; k < m; ++k) rgb_of((H[k] + shift) & 255, S[k], V[k], Ro[k], Go[k], Bo[k]);
    for (size_t k = 0; k < m; ++k) {
      q[k * 3] = static_cast<uint8_t>(Ro[k]);
      q[k * 3 + 1] = static_cast<uint8_t>(Go[k]);
      q[k * 3 + 2] = static_cast<uint8_t>(Bo[k]);
    }
  }
}

M2T_CPU_CLONES void to_grayscale(Image& im) {
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

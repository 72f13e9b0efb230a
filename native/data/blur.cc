// Compiled with -ffp-contract=off (PIL's single-precision radius and weights must match).
#include "blur.h"
#include "core/cpu_dispatch.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace m2t::data {

float box_blur_radius(float sigma, int passes) {
  const float sigma2 = sigma * sigma / passes;
  const float L = static_cast<float>(std::sqrt(12.0 * sigma2 + 1.0));
  const float l = static_cast<float>(std::floor((L - 1.0) / 2.0));
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

namespace {

// Weights of a box of radius r + f (0 ≤ f < 1): the 2r+1 inner taps weigh ww, the two outer taps
// fw, in 24-bit fixed point: ww = ⌊2^24 / (2(r+f) + 1)⌋, fw = (2^24 − (2r+1)·ww) / 2.
struct BoxWeights {
  int r;
  uint32_t ww, fw;
  explicit BoxWeights(float radius) {
    r = static_cast<int>(radius);
    ww = static_cast<uint32_t>(static_cast<float>(1u << 24) / (radius * 2 + 1));
    fw = ((1u << 24) - uint32_t(2 * r + 1) * ww) / 2;
  }
};

// One pass of the box along x or y. With indices clamped to the image (edges repeat):
//   out[x] = (ww·Σ_{|k|≤r} in[x+k] + fw·(in[x−r−1] + in[x+r+1]) + 2^23) >> 24.
// A running sum makes it O(n) for any radius.
inline uint8_t box_out(uint32_t acc, uint32_t far, const BoxWeights& w) {
  return static_cast<uint8_t>((acc * w.ww + far * w.fw + (1u << 23)) >> 24);
}

// Along the columns of an image of `rows` rows of `n` bytes: whole rows at a time (vectorises).
M2T_CPU_CLONES void box_cols(const uint8_t* in, uint8_t* out, int n, int rows, const BoxWeights& w,
              std::vector<uint32_t>& acc_buf) {
  const int r = w.r, last = rows - 1;
  auto row = [&](int y) { return in + size_t(std::clamp(y, 0, last)) * n; };
  acc_buf.assign(size_t(n), 0);
  uint32_t* acc = acc_buf.data();
  for (int k = -r; k <= r; ++k) {
    const uint8_t* s = row(k);
    for (int i = 0; i < n; ++i) acc[i] += s[i];
  }
  for (int y = 0; y < rows; ++y) {
    const uint8_t *lo = row(y - r - 1), *hi = row(y + r + 1), *drop = row(y - r);
    uint8_t* o = out + size_t(y) * n;
    for (int i = 0; i < n; ++i) {
      o[i] = box_out(acc[i], uint32_t(lo[i]) + hi[i], w);
      acc[i] += uint32_t(hi[i]) - drop[i];
    }
  }
}

}  // namespace

namespace {
// RGB pixel transpose, in tiles for the cache: out[x][y] = in[y][x].
void transpose_rgb(const uint8_t* in, int w, int h, uint8_t* out) {
  constexpr int T = 32;
  for (int y0 = 0; y0 < h; y0 += T)
    for (int x0 = 0; x0 < w; x0 += T)
      for (int y = y0; y < std::min(h, y0 + T); ++y)
        for (int x = x0; x < std::min(w, x0 + T); ++x) {
          const uint8_t* s = in + (size_t(y) * w + x) * 3;
          uint8_t* d = out + (size_t(x) * h + y) * 3;
          d[0] = s[0];
          d[1] = s[1];
          d[2] = s[2];
        }
}
}  // namespace

void GaussianBlur::apply(Image& im, float sigma, int passes) {
  if (sigma == 0.0f) return;  // PIL: radius 0 returns a copy
  const BoxWeights w(box_blur_radius(sigma, passes));
  const int W = im.width, H = im.height;
  if (W == 0 || H == 0) return;
  // All horizontal passes, then all vertical ones (as PIL), each rounded to 8 bits. The
  // horizontal ones run as column passes on the transposed image: whole rows at a time, which
  // vectorises, with the same integer arithmetic.
  rows_.resize(im.pixels.size());
  line_.resize(im.pixels.size());
  transpose_rgb(im.pixels.data(), W, H, rows_.data());
  uint8_t *a = rows_.data(), *b = line_.data();
  for (int p = 0; p < passes; ++p) {
    box_cols(a, b, H * 3, W, w, acc_);
    std::swap(a, b);
  }
  transpose_rgb(a, H, W, im.pixels.data());
  a = im.pixels.data();
  b = rows_.data();
  for (int p = 0; p < passes; ++p) {
    box_cols(a, b, W * 3, H, w, acc_);
    std::swap(a, b);
  }
  if (a != im.pixels.data()) std::memcpy(im.pixels.data(), a, im.pixels.size());
}

}  // namespace m2t::data

// Geometry: RandomResizedCrop's box selection (torchvision), shorter-side resize + centre crop,
// and PIL's antialiased bilinear resampling (Image.resize(size, BILINEAR, box)), bit-exact.
#pragma once
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "common.h"

namespace m2t::data {

// A crop in source pixels: torchvision's (i, j, h, w) = (top, left, height, width).
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox& o) const {
    return top == o.top && left == o.left && height == o.height && width == o.width;
  }
};

struct RrcConfig {
  double scale_lo = 0.08, scale_hi = 1.0;         // area fraction ~ U(lo, hi)
  double ratio_lo = 3.0 / 4.0, ratio_hi = 4.0 / 3.0;  // log aspect ratio ~ U(log lo, log hi)
};

// Python's round(): half to even (nearbyint in the default rounding mode).
inline int round_half_even(double x) { return static_cast<int>(std::nearbyint(x)); }

// torchvision RandomResizedCrop.get_params: up to 10 tries of (area fraction, aspect ratio);
// the first box that fits is placed uniformly; otherwise the whole image, its ratio clamped to
// [ratio_lo, ratio_hi], centred. `R` supplies uniform(lo, hi), log_uniform(lo, hi) and
// below(n) — an Rng, or in tests a replay of torch's draws.
template <class R>
CropBox random_resized_crop(int width, int height, const RrcConfig& c, R& rng) {
  const double area = double(height) * double(width);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(c.scale_lo, c.scale_hi);
    const double aspect = rng.log_uniform(c.ratio_lo, c.ratio_hi);
    const int w = round_half_even(std::sqrt(target_area * aspect));
    const int h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      CropBox b;
      b.height = h;
      b.width = w;
      b.top = static_cast<int>(rng.below(uint64_t(height - h + 1)));
      b.left = static_cast<int>(rng.below(uint64_t(width - w + 1)));
      return b;
    }
  }
  const double in_ratio = double(width) / double(height);
  CropBox b;
  if (in_ratio < c.ratio_lo) {
    b.width = width;
    b.height = round_half_even(b.width / c.ratio_lo);
  } else if (in_ratio > c.ratio_hi) {
    b.height = height;
    b.width = round_half_even(b.height * c.ratio_hi);
  } else {
    b.width = width;
    b.height = height;
  }
  b.top = (height - b.height) / 2;
  b.left = (width - b.width) / 2;
  return b;
}

// torchvision Resize(int): the shorter side becomes `size`, the longer int(size·long/short).
std::pair<int, int> shorter_side_dims(int width, int height, int size);

// First row/column of torchvision's CenterCrop of `crop` from `size` pixels: round-half-even
// centring, or a negative offset (zero padding) when the crop is larger than the image.
int center_offset(int size, int crop);

// PIL's two-pass antialiased bilinear resampling of `src` (its box (x0, y0, x1, y1) in src
// pixels, float like PIL's) to out_w × out_h, evaluating only the output window whose top-left
// is (wx, wy) and size win_w × win_h into `dst` (RGB, stride win_w·3). Window pixels that fall
// outside the output are 0 (torchvision's CenterCrop padding). Two separable passes with PIL's
// 22-bit fixed-point coefficients, the intermediate rounded to 8 bits, in Pillow 13's order
// (see run): results equal Pillow's bit for bit.
class Resampler {
 public:
  void run(const ImageView& src, const float box[4], int out_w, int out_h, int wx, int wy,
           int win_w, int win_h, uint8_t* dst);

 private:
  struct Coeffs {
    int ksize = 0;
    std::vector<int> bounds;  // per output: first source index, tap count
    std::vector<int32_t> k;   // per output: ksize fixed-point weights
  };
  static void compute(int in_size, float in0, float in1, int out_size, int first, int count,
                      Coeffs& c);
  void hpass_any(const ImageView& in, int rows, const Coeffs& c, int cols, int shift, uint8_t* out,
                 size_t out_stride);
  Coeffs horiz_, vert_;
  std::vector<uint8_t> tmp_, tin_, tout_;
  std::vector<int32_t> acc_;
};

}  // namespace m2t::data

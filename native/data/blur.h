// PIL's ImageFilter.GaussianBlur(radius = σ): not a sampled Gaussian but three passes of an
// "extended" box filter per axis (Gwosdek et al., SSVM 2011) whose variance matches σ²,
// in 8-bit fixed point with edge pixels repeated. Reproduced bit for bit.
#pragma once
#include <cstdint>
#include <vector>

#include "common.h"

namespace m2t::data {

// Box radius r = l + a (integer part l, fractional part a) of one of `passes` boxes whose
// composition has variance σ²: L = sqrt(12σ²/passes + 1), l = floor((L − 1)/2),
// a = (2l+1)(l(l+1) − 3σ²/passes) / (6(σ²/passes − (l+1)²)). Single precision, as PIL.
float box_blur_radius(float sigma, int passes);

class GaussianBlur {
 public:
  // In place; `sigma` is PIL's radius (converted to single precision like PIL's argument).
  void apply(Image& im, float sigma, int passes = 3);

 private:
  std::vector<uint8_t> line_;
  std::vector<uint32_t> acc_;
  std::vector<uint8_t> rows_;
};

}  // namespace m2t::data

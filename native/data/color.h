// Point operations on 8-bit RGB, reproducing PIL/torchvision bit for bit:
// ColorJitter's four adjustments (ImageEnhance blends, HSV hue rotation), grayscale, solarize.
#pragma once
#include <cstdint>

#include "common.h"

namespace m2t::data {

// ITU-R 601-2 luma in PIL's fixed point: (19595 R + 38470 G + 7471 B + 2^15) >> 16.
inline uint8_t luma(int r, int g, int b) {
  return static_cast<uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

// PIL Image.blend(a, b, alpha) for one value: a + alpha·(b − a) in single precision, truncated,
// clamped to [0, 255].
inline uint8_t blend8(int a, int b, float alpha) {
  const float t = static_cast<float>(a) + alpha * static_cast<float>(b - a);
  if (t <= 0.0f) return 0;
  if (t >= 255.0f) return 255;
  return static_cast<uint8_t>(t);
}

// ImageEnhance.Brightness: blend with black.
void adjust_brightness(Image& im, float factor);
// ImageEnhance.Contrast: blend with the rounded mean of the grayscale image.
void adjust_contrast(Image& im, float factor);
// ImageEnhance.Color: blend with the image's own grayscale version.
void adjust_saturation(Image& im, float factor);
// torchvision adjust_hue on PIL: RGB → HSV (8-bit), H += int(hue·255) mod 256, HSV → RGB.
void adjust_hue(Image& im, float hue);
// RandomGrayscale: L copied to the three channels.
void to_grayscale(Image& im);
// ImageOps.solarize: v ≥ threshold → 255 − v.
void solarize(Image& im, int threshold = 128);

// PIL's 8-bit HSV conversions (exposed for tests).
void rgb_to_hsv(const uint8_t rgb[3], uint8_t hsv[3]);
void hsv_to_rgb(const uint8_t hsv[3], uint8_t rgb[3]);

}  // namespace m2t::data

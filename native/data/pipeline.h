// One augmented view, spec §7: crop → ColorJitter (p, random order) → Gaussian blur (p) →
// grayscale (p) → horizontal flip (p) → solarize (p) → to float, normalise; written straight
// into an NHWC float32 batch slot. Random parameters are drawn first (ViewParams), from streams
// keyed by the caller, then applied; the image is decoded once for all views of a sample.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "blur.h"
#include "common.h"
#include "crop.h"
#include "decode.h"
#include "rng.h"

namespace m2t::data {

struct ViewConfig {
  int out_h = 224, out_w = 224;
  enum class Crop { RandomResized, Center } crop = Crop::RandomResized;
  RrcConfig rrc;       // RandomResized
  int resize = 256;    // Center: shorter side resized to this first (0: no resize)
  // ColorJitter strengths as torchvision's: factors U(max(0, 1 − s), 1 + s), hue U(−h, h);
  // a zero strength skips that adjustment entirely.
  double jitter_p = 0.0, brightness = 0.0, contrast = 0.0, saturation = 0.0, hue = 0.0;
  double blur_p = 0.0, sigma_lo = 0.1, sigma_hi = 2.0;
  double gray_p = 0.0, flip_p = 0.0, solarize_p = 0.0;
  int solarize_threshold = 128;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};
  bool scaled_decode = true;  // allow JPEG DCT-domain downscaling when the crop permits

  // Spec §7 presets.
  static ViewConfig byol_view1();
  static ViewConfig byol_view2();
  static ViewConfig linear_train();
  static ViewConfig validation();
  // Throws DataError(RangeError) naming the first bad field.
  void validate(const std::string& where) const;
};

struct ViewParams {
  CropBox crop;                   // in full-resolution source pixels
  int resized_w = 0, resized_h = 0;  // Center: size after the shorter-side resize
  bool jitter = false;
  std::array<int, 4> order{0, 1, 2, 3};  // 0 brightness, 1 contrast, 2 saturation, 3 hue
  float brightness = 1, contrast = 1, saturation = 1, hue = 0;
  bool blur = false;
  float sigma = 0;
  bool gray = false, flip = false, solarize = false;
};

// Draws a view's parameters for a width × height source from the stream `key`.
ViewParams draw_view_params(const ViewConfig& cfg, int width, int height, uint64_t key);

// Applies the photometric part (jitter … solarize, not flip) to an 8-bit image in place.
class PhotometricOps {
 public:
  void apply(Image& im, const ViewConfig& cfg, const ViewParams& p);

 private:
  GaussianBlur blur_;
};

// Writes (v/255 − mean)/std in float32, exactly torchvision's ToTensor + Normalize, mirrored
// horizontally if `flip`, into dst (HWC).
// (level / 255 − mean[c]) / std[c] for every 8-bit level of each channel: the only values
// normalize_into writes.
void normalize_lut(const ViewConfig& cfg, float lut[3][256]);
void normalize_into(const Image& im, const ViewConfig& cfg, bool flip, float* dst);

// Renders one view from a decoded image with given parameters. `img` is the source decoded at
// 1/denom of its full width × height (denom = 1: full size); parameters are in full-size pixels.
// Output: normalised floats (out_h·out_w·3) into float_out, or the final 8-bit image (flip
// included) into u8_out when that is given.
class ViewRenderer {
 public:
  void render(const ImageView& img, int width, int height, int denom, const ViewConfig& cfg,
              const ViewParams& p, float* float_out, Image* u8_out = nullptr);

 private:
  Resampler resampler_;
  PhotometricOps ops_;
  Image view_;
};

// Where a sample's pixels are: encoded bytes (JPEG/PNG) or raw 8-bit pixels (1 or 3 channels).
struct SourceRef {
  bool encoded = false;  // true: bytes/size (possibly empty); false: pixels
  const uint8_t* bytes = nullptr;
  size_t size = 0;
  const uint8_t* pixels = nullptr;
  int width = 0, height = 0, channels = 0;
};

// Per-thread worker state: a decoder and scratch images. Not thread-safe; one per thread.
class Augmenter {
 public:
  // Renders `n` views of one source. For view v: parameters from stream keys[v]; output either
  // normalised floats into float_out[v] (out_h·out_w·3) or, if u8_out is given, the 8-bit image
  // after all ops including flip (for previews and tests). params_out, if given, receives the
  // drawn parameters. Throws DataError if the source cannot be decoded.
  void render(const SourceRef& src, const ViewConfig* cfgs, const uint64_t* keys, int n,
              float* const* float_out, Image* u8_out = nullptr, ViewParams* params_out = nullptr);

  // Decodes a source to full-resolution RGB (preview).
  void decode_full(const SourceRef& src, Image& out);

  // The JPEG DCT scaling denominator chosen for the last render (1 = full size).
  int last_denom() const { return last_denom_; }

 private:
  ImageView source_view(const SourceRef& src, int denom);
  Decoder decoder_;
  ViewRenderer renderer_;
  Image decoded_;
  int last_denom_ = 1;
};

}  // namespace m2t::data

// ColorJitter's adjustments, grayscale, solarize, flip, normalisation and Gaussian blur against
// Pillow/torchvision outputs (tools/data/make_refs.py): all bit-exact.
#include <gtest/gtest.h>

#include "data/blur.h"
#include "data/color.h"
#include "data/pipeline.h"
#include "refs.h"

using namespace m2t::data;
using namespace m2t::data::test;

namespace {
const Refs& color() {
  static Refs refs("color");
  return refs;
}
const char* kImages[] = {"img0", "img1", "img2"};
}  // namespace

TEST(ColorJitter, EachAdjustmentBitExactWithPillow) {
  const Refs& refs = color();
  int checked = 0;
  for (const char* g : kImages) {
    const Image src = refs.at(std::string("color/") + g + "/input").image();
    for (const char* op : {"brightness", "contrast", "saturation", "hue"}) {
      const std::string base = std::string("color/") + g + "/" + op + "/";
      for (const std::string& k : refs.cases(base)) {
        const float f = float(refs.at(base + k + "/factor").as<double>()[0]);
        Image im = src;
        switch (op[0]) {
          case 'b': adjust_brightness(im, f); break;
          case 'c': adjust_contrast(im, f); break;
          case 's': adjust_saturation(im, f); break;
          default: adjust_hue(im, f); break;
        }
        const Diff d = diff_u8(im.pixels, refs.at(base + k + "/expected").image().pixels);
        EXPECT_EQ(d.max, 0) << g << " " << op << " factor " << f;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 3 * 20);
}

TEST(Color, GrayscaleSolarizeFlipNormalizeExact) {
  const Refs& refs = color();
  for (const char* g : kImages) {
    const std::string base = std::string("color/") + g + "/";
    const Image src = refs.at(base + "input").image();
    Image gray = src;
    to_grayscale(gray);
    EXPECT_EQ(gray.pixels, refs.at(base + "gray/expected").image().pixels) << g;
    Image sol = src;
    solarize(sol);
    EXPECT_EQ(sol.pixels, refs.at(base + "solarize/expected").image().pixels) << g;
    // Flip and normalisation happen together in the final write.
    const ViewConfig cfg;  // ImageNet mean/std
    std::vector<float> out(src.pixels.size());
    normalize_into(src, cfg, false, out.data());
    EXPECT_EQ(out, refs.at(base + "normalize/expected").as<float>()) << g;
    const Image flipped = refs.at(base + "flip/expected").image();
    std::vector<float> a(src.pixels.size()), b(src.pixels.size());
    normalize_into(src, cfg, true, a.data());
    normalize_into(flipped, cfg, false, b.data());
    EXPECT_EQ(a, b) << g;
  }
}

TEST(GaussianBlur, BitExactWithPillow) {
  const Refs& refs = color();
  GaussianBlur blur;
  int checked = 0;
  for (const char* g : {"img0", "img1", "img2", "tiny"}) {
    const std::string base = std::string("color/") + g + "/";
    const Image src = refs.at(base + "input").image();
    for (const std::string& k : refs.cases(base + "blur/")) {
      const double sigma = refs.at(base + "blur/" + k + "/sigma").as<double>()[0];
      Image im = src;
      blur.apply(im, float(sigma));
      const Diff d = diff_u8(im.pixels, refs.at(base + "blur/" + k + "/expected").image().pixels);
      EXPECT_EQ(d.max, 0) << g << " sigma " << sigma;
      ++checked;
    }
  }
  EXPECT_GE(checked, 15);
}

TEST(GaussianBlur, RadiusMatchesVariance) {
  // The extended box (inner taps k = −l…l of weight w = 1/(2r+1), outer taps ±(l+1) of weight
  // a·w, r = l + a) has variance Σ w·k² + 2a·w·(l+1)²; three passes must add up to σ².
  for (float sigma : {0.1f, 0.5f, 1.0f, 1.7f, 2.0f, 5.0f}) {
    const float r = box_blur_radius(sigma, 3);
    const int l = int(r);
    const double a = r - l, w = 1.0 / (2 * r + 1);
    double var = 0;
    for (int k = -l; k <= l; ++k) var += w * k * k;
    var += 2 * a * w * (l + 1) * (l + 1);
    EXPECT_NEAR(3 * var, double(sigma) * sigma, 1e-3 * sigma * sigma + 1e-5) << sigma;
  }
}

TEST(ColorJitter, FastHueEqualsThePilConversionsOnEveryColourClass) {
  // adjust_hue is a restructured rgb→hsv→rgb; compare it with the verbatim conversions on a
  // lattice of colours (every third level per channel) and several shifts.
  Image im;
  im.resize(86 * 86, 86);
  for (int r = 0; r < 86; ++r)
    for (int g = 0; g < 86; ++g)
      for (int b = 0; b < 86; ++b) {
        uint8_t* p = im.row(r) + size_t(g * 86 + b) * 3;
        p[0] = uint8_t(r * 3), p[1] = uint8_t(g * 3), p[2] = uint8_t(b * 3);
      }
  for (float hue : {-0.1f, -0.0039f, 0.0f, 0.05f, 0.1f, 0.5f}) {
    Image fast = im;
    adjust_hue(fast, hue);
    const uint8_t shift = uint8_t(int32_t(hue * 255.0));
    size_t bad = 0;
    for (size_t i = 0; i < im.pixels.size(); i += 3) {
      uint8_t hsv[3], rgb[3];
      rgb_to_hsv(&im.pixels[i], hsv);
      hsv[0] = uint8_t(hsv[0] + shift);
      hsv_to_rgb(hsv, rgb);
      bad += rgb[0] != fast.pixels[i] || rgb[1] != fast.pixels[i + 1] || rgb[2] != fast.pixels[i + 2];
    }
    EXPECT_EQ(bad, 0u) << "hue " << hue;
  }
}

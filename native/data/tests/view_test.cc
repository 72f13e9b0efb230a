// Whole views with explicit parameters (crop, jitter order and factors, blur, grayscale, flip,
// solarize, normalise) against the reference's torchvision composition: bit-exact floats.
#include <gtest/gtest.h>

#include "data/pipeline.h"
#include "refs.h"

using namespace m2t::data;
using namespace m2t::data::test;

TEST(View, WholePipelineBitExactWithTorchvision) {
  const Refs refs("view");
  ViewRenderer vr;
  int n = 0;
  for (const std::string& c : refs.cases("view/")) {
    const std::string k = "view/" + c + "/";
    const Image src = refs.at(k + "input").image();
    const auto p = refs.at(k + "params").as<double>();
    ViewConfig cfg = ViewConfig::byol_view2();  // every strength non-zero
    cfg.out_h = int(p[18]);
    cfg.out_w = int(p[19]);
    ViewParams vp;
    vp.crop = {int(p[0]), int(p[1]), int(p[2]), int(p[3])};
    vp.jitter = p[4] != 0;
    for (int i = 0; i < 4; ++i) vp.order[size_t(i)] = int(p[5 + i]);
    vp.brightness = float(p[9]);
    vp.contrast = float(p[10]);
    vp.saturation = float(p[11]);
    vp.hue = float(p[12]);
    vp.blur = p[13] != 0;
    vp.sigma = float(p[14]);
    vp.gray = p[15] != 0;
    vp.flip = p[16] != 0;
    vp.solarize = p[17] != 0;
    const auto want = refs.at(k + "expected").as<float>();
    std::vector<float> out(want.size());
    vr.render(ImageView::of(src), src.width, src.height, 1, cfg, vp, out.data());
    size_t bad = 0;
    for (size_t i = 0; i < out.size(); ++i) bad += out[i] != want[i];
    EXPECT_EQ(bad, 0u) << "case " << c;
    ++n;
  }
  EXPECT_EQ(n, 24);
}

TEST(View, ScaledJpegDecodeIsUsedWhenTheCropAllowsAndStaysClose) {
  const Refs refs("decode");
  const auto file = refs.at("scaled/file").as<uint8_t>();  // 257 x 203 JPEG
  SourceRef src;
  src.encoded = true;
  src.bytes = file.data();
  src.size = file.size();
  ViewConfig cfg = ViewConfig::validation();
  cfg.resize = 64;  // 257x203 → 81x64: a 1/2-scale decode (129x102) still downsamples
  cfg.out_h = cfg.out_w = 56;
  ViewConfig full = cfg;
  full.scaled_decode = false;
  Augmenter aug;
  Image a, b;
  const uint64_t key = 1;
  aug.render(src, &cfg, &key, 1, nullptr, &a);
  EXPECT_EQ(aug.last_denom(), 2);
  aug.render(src, &full, &key, 1, nullptr, &b);
  EXPECT_EQ(aug.last_denom(), 1);
  double sum = 0;
  int mx = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const int d = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    sum += d;
    mx = std::max(mx, d);
  }
  EXPECT_LT(sum / a.pixels.size(), 2.0);  // same picture, slightly different sampling
  EXPECT_LT(mx, 40);
  // Random crops: the scale follows the smaller of the two views' crops.
  ViewConfig rrc[2] = {ViewConfig::byol_view1(), ViewConfig::byol_view2()};
  for (auto& c : rrc) c.out_h = c.out_w = 24;
  int scaled = 0;
  for (uint64_t k = 0; k < 200; ++k) {
    const uint64_t keys[2] = {2 * k, 2 * k + 1};
    ViewParams p[2];
    Image o[2];
    aug.render(src, rrc, keys, 2, nullptr, o, p);
    int want = 1;
    for (int d : {8, 4, 2}) {
      if (p[0].crop.width >= d * 24 && p[0].crop.height >= d * 24 && p[1].crop.width >= d * 24 && p[1].crop.height >= d * 24) {
        want = d;
        break;
      }
    }
    ASSERT_EQ(aug.last_denom(), want);
    scaled += want > 1;
  }
  EXPECT_GT(scaled, 20);
}

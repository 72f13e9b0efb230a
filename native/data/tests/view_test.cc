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

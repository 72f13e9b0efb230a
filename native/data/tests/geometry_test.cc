// Crop box selection (replaying torchvision's draws), its distribution, PIL-exact resampling,
// and the validation transform, against tools/data/make_refs.py references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "data/crop.h"
#include "data/pipeline.h"
#include "data/rng.h"
#include "refs.h"

using namespace m2t::data;
using namespace m2t::data::test;

namespace {

// Replays recorded torch draws: area fractions, aspect ratios (after exp), then two integers.
struct Replay {
  std::vector<double> s, r;
  std::vector<int64_t> ints;
  size_t si = 0, ri = 0, ii = 0;
  double uniform(double, double) { return s.at(si++); }
  double log_uniform(double, double) { return r.at(ri++); }
  uint64_t below(uint64_t n) {
    const int64_t v = ints.at(ii++);
    EXPECT_LT(uint64_t(v), n);
    return uint64_t(v);
  }
};

const Refs& geometry() {
  static Refs refs("geometry");
  return refs;
}

}  // namespace

TEST(RandomResizedCrop, SameBoxAsTorchvisionGivenTheSameDraws) {
  const Tensor& t = geometry().at("rrc/table");
  const auto v = t.as<double>();
  const int64_t rows = t.dim(0), cols = t.dim(1);
  int fallbacks = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = &v[size_t(r * cols)];
    const int W = int(row[0]), H = int(row[1]);
    RrcConfig c{row[2], row[3], row[4], row[5]};
    const int tries = int(row[6]);
    Replay rep;
    for (int k = 0; k < tries; ++k) {
      rep.s.push_back(row[7 + k]);
      rep.r.push_back(row[17 + k]);
    }
    if (row[27] >= 0) rep.ints = {int64_t(row[27]), int64_t(row[28])};
    // Fallback rows: torch drew 10 times without a fit; our crop draws 10 times too.
    const CropBox b = random_resized_crop(W, H, c, rep);
    const CropBox want{int(row[29]), int(row[30]), int(row[31]), int(row[32])};
    ASSERT_EQ(b, want) << "row " << r << " W=" << W << " H=" << H;
    fallbacks += row[27] < 0;
  }
  EXPECT_GT(fallbacks, 20);  // the centre-crop fallback is exercised
}

// Two-sample Kolmogorov–Smirnov statistic.
static double ks(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    d = std::max(d, std::abs(double(i) / a.size() - double(j) / b.size()));
  }
  return d;
}

TEST(RandomResizedCrop, DistributionMatchesTorchvision) {
  const Tensor& t = geometry().at("rrc/samples_500x375");
  const auto ref = t.as<int32_t>();
  const size_t n = size_t(t.dim(0));
  std::vector<double> stat_ref[5], stat_our[5];
  Rng rng(stream_key(99, Stream::Crop));
  auto add = [](std::vector<double>* s, const CropBox& b) {
    s[0].push_back(b.height);
    s[1].push_back(b.width);
    s[2].push_back(double(b.width) * b.height / (500.0 * 375.0));
    s[3].push_back(b.top + b.height / 2.0);   // centre y
    s[4].push_back(b.left + b.width / 2.0);   // centre x
  };
  for (size_t k = 0; k < n; ++k) {
    add(stat_ref, CropBox{ref[k * 4], ref[k * 4 + 1], ref[k * 4 + 2], ref[k * 4 + 3]});
    add(stat_our, random_resized_crop(500, 375, RrcConfig{}, rng));
  }
  // n = m = 20000: the KS critical value at α = 0.001 is 1.95·sqrt(2/n) ≈ 0.0195.
  const char* names[5] = {"height", "width", "area", "centre y", "centre x"};
  for (int s = 0; s < 5; ++s) EXPECT_LT(ks(stat_ref[s], stat_our[s]), 0.0195) << names[s];
}

TEST(Resample, BitExactWithPillowBilinear) {
  const Refs& refs = geometry();
  Resampler rs;
  int cases = 0;
  for (const std::string& c : refs.cases("resize/")) {
    if (c.rfind("src", 0) == 0) continue;
    const std::string k = "resize/" + c + "/";
    const auto p = refs.at(k + "params").as<int32_t>();
    const Image src = refs.at("resize/src" + std::to_string(p[0])).image();
    const Image want = refs.at(k + "expected").image();
    const int oh = p[5], ow = p[6];
    std::vector<uint8_t> out(size_t(oh) * ow * 3);
    if (refs.has(k + "box")) {
      const auto box = refs.at(k + "box").as<float>();
      rs.run(ImageView::of(src), box.data(), ow, oh, 0, 0, ow, oh, out.data());
    } else {
      const int i = p[1], j = p[2], h = p[3], w = p[4];
      const float box[4] = {0, 0, float(w), float(h)};
      rs.run(ImageView::of(src).sub(j, i, w, h), box, ow, oh, 0, 0, ow, oh, out.data());
    }
    const Diff d = diff_u8(out, want.pixels);
    EXPECT_EQ(d.max, 0) << "case " << c << " (" << d.over1 << " values off by more than 1)";
    ++cases;
  }
  EXPECT_GE(cases, 30);
}

TEST(ValidationTransform, BitExactWithTorchvision) {
  const Refs& refs = geometry();
  ViewRenderer vr;
  for (const std::string& c : refs.cases("val/")) {
    const std::string k = "val/" + c + "/";
    const Image src = refs.at(k + "input").image();
    const auto p = refs.at(k + "params").as<int32_t>();
    const auto want = refs.at(k + "expected").as<float>();
    ViewConfig cfg = ViewConfig::validation();
    cfg.resize = p[0];
    cfg.out_h = cfg.out_w = p[1];
    const ViewParams vp = draw_view_params(cfg, src.width, src.height, 0);
    std::vector<float> out(want.size());
    vr.render(ImageView::of(src), src.width, src.height, 1, cfg, vp, out.data());
    size_t bad = 0;
    for (size_t i = 0; i < out.size(); ++i) bad += out[i] != want[i];
    EXPECT_EQ(bad, 0u) << "case " << c << " (" << src.width << "x" << src.height << ")";
  }
}

TEST(Geometry, ShorterSideAndCentre) {
  EXPECT_EQ(shorter_side_dims(500, 375, 256), std::make_pair(341, 256));
  EXPECT_EQ(shorter_side_dims(375, 500, 256), std::make_pair(256, 341));
  EXPECT_EQ(center_offset(256, 224), 16);
  EXPECT_EQ(center_offset(341, 224), 58);  // round(58.5) = 58, half to even
  EXPECT_EQ(center_offset(24, 32), -4);    // padded
}

TEST(Resample, RandomSmallResizesBitExact) {
  const Refs& refs = geometry();
  Resampler rs;
  int cases = 0;
  for (const std::string& c : refs.cases("resize_rand/")) {
    const std::string k = "resize_rand/" + c + "/";
    const Image src = refs.at(k + "input").image();
    const Image want = refs.at(k + "expected").image();
    const float box[4] = {0, 0, float(src.width), float(src.height)};
    std::vector<uint8_t> out(want.pixels.size());
    rs.run(ImageView::of(src), box, want.width, want.height, 0, 0, want.width, want.height, out.data());
    EXPECT_EQ(diff_u8(out, want.pixels).max, 0) << "case " << c << ": " << src.width << "x" << src.height
                                                << " -> " << want.width << "x" << want.height;
    ++cases;
  }
  EXPECT_EQ(cases, 80);
}

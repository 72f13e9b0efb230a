// The batch loader: determinism across thread counts, resume at (epoch, batch), sharding,
// partial eval batches, bad files replaced and reported, all-bad data failing cleanly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "data/loader.h"
#include "refs.h"

using namespace m2t::data;
using namespace m2t::data::test;

namespace {

std::vector<uint8_t> ref_file(const std::string& key) {
  static Refs refs("decode");
  return refs.at(key).as<uint8_t>();
}

// n encoded images cycling through JPEG and PNG variants; indices in `bad` get broken bytes.
std::shared_ptr<EncodedDataset> encoded(int n, const std::set<int>& bad = {}) {
  const char* good[] = {"decode/jpeg420/file", "decode/pngrgb/file", "decode/jpegcmyk/file",
                        "decode/pngp/file", "decode/jpeggray/file", "scaled/file"};
  const char* broken[] = {"broken/jpegtrunc/file", "broken/text/file", "broken/empty/file"};
  std::vector<std::vector<uint8_t>> files;
  std::vector<int32_t> labels;
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    const bool b = bad.count(i) != 0;
    files.push_back(ref_file(b ? broken[i % 3] : good[i % 6]));
    labels.push_back(i % 3);
    names.push_back(cat(b ? "bad" : "good", i, ".jpg"));
  }
  return std::make_shared<EncodedDataset>(std::move(files), std::move(labels), std::move(names));
}

LoaderConfig pretrain_cfg(int threads, int batch = 4) {
  LoaderConfig c;
  c.batch_size = batch;
  ViewConfig v1 = ViewConfig::byol_view1(), v2 = ViewConfig::byol_view2();
  v1.out_h = v1.out_w = v2.out_h = v2.out_w = 24;
  c.views = {v1, v2};
  c.sampler.seed = 42;
  c.threads = threads;
  c.prefetch = 3;
  return c;
}

struct Epoch {
  std::vector<std::vector<float>> v1, v2;
  std::vector<std::vector<int32_t>> indices;
};

Epoch run_epoch(Loader& l, int64_t epoch, int64_t first = 0) {
  Epoch e;
  l.start_epoch(epoch, first);
  const size_t per = 24 * 24 * 3;
  while (auto b = l.next()) {
    e.v1.emplace_back(b->views[0].get(), b->views[0].get() + per * size_t(b->size));
    e.v2.emplace_back(b->views[1].get(), b->views[1].get() + per * size_t(b->size));
    e.indices.push_back(b->indices);
  }
  return e;
}

}  // namespace

TEST(Loader, SameBatchesBitForBitWithOneOrManyThreads) {
  auto ds = encoded(30);
  Loader one(ds, pretrain_cfg(1)), four(ds, pretrain_cfg(4));
  EXPECT_EQ(one.batches_per_epoch(), 7);  // 30 // 4, last partial dropped
  for (int64_t epoch : {0, 1}) {
    const Epoch a = run_epoch(one, epoch), b = run_epoch(four, epoch);
    ASSERT_EQ(a.v1.size(), 7u);
    EXPECT_EQ(a.indices, b.indices);
    for (size_t i = 0; i < a.v1.size(); ++i) {
      EXPECT_EQ(std::memcmp(a.v1[i].data(), b.v1[i].data(), a.v1[i].size() * 4), 0) << "batch " << i;
      EXPECT_EQ(std::memcmp(a.v2[i].data(), b.v2[i].data(), a.v2[i].size() * 4), 0) << "batch " << i;
    }
  }
  const Epoch e0 = run_epoch(one, 0), e1 = run_epoch(one, 1);
  EXPECT_NE(e0.indices, e1.indices);  // a fresh permutation per epoch
  EXPECT_NE(e0.v1[0], e0.v2[0]);      // two different views
}

TEST(Loader, ResumesMidEpochWithTheSameData) {
  auto ds = encoded(30);
  Loader l(ds, pretrain_cfg(2));
  const Epoch full = run_epoch(l, 3), tail = run_epoch(l, 3, 4);
  ASSERT_EQ(tail.v1.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(tail.indices[i], full.indices[4 + i]);
    EXPECT_EQ(tail.v1[i], full.v1[4 + i]);
  }
  EXPECT_THROW(l.start_epoch(3, 8), DataError);
}

TEST(Loader, ShardsAreDisjointAndEvalKeepsThePartialBatch) {
  auto ds = encoded(11);
  std::multiset<int32_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    LoaderConfig c = pretrain_cfg(2);
    c.views = {ViewConfig::validation()};
    c.views[0].resize = 20;
    c.views[0].out_h = c.views[0].out_w = 16;
    c.drop_last = false;
    c.sampler.shuffle = false;
    c.sampler.world = 3;
    c.sampler.rank = rank;
    Loader l(ds, c);
    EXPECT_EQ(l.batches_per_epoch(), 1);  // ceil(11/3) = 4 per rank, batch 4
    l.start_epoch(0);
    auto b = l.next();
    ASSERT_TRUE(b);
    EXPECT_EQ(b->size, 4);
    for (int32_t i : b->indices) seen.insert(i);
    for (int k = 0; k < 4; ++k) EXPECT_EQ(b->labels[size_t(k)], b->indices[size_t(k)] % 3);
    EXPECT_FALSE(l.next());
  }
  EXPECT_EQ(seen.size(), 12u);  // 11 + 1 padding
  LoaderConfig c = pretrain_cfg(1, 4);
  c.views = {ViewConfig::linear_train()};
  c.views[0].out_h = c.views[0].out_w = 16;
  c.drop_last = false;
  Loader l(ds, c);
  EXPECT_EQ(l.batches_per_epoch(), 3);
  l.start_epoch(0);
  int sizes = 0, last = 0;
  while (auto b = l.next()) {
    sizes += b->size;
    last = b->size;
  }
  EXPECT_EQ(sizes, 11);
  EXPECT_EQ(last, 3);
}

TEST(Loader, BadFilesAreReplacedCountedAndReported) {
  const std::set<int> bad = {1, 5, 9, 13, 22};
  auto ds = encoded(30, bad);
  Loader a(ds, pretrain_cfg(1)), b(ds, pretrain_cfg(3));
  const Epoch ea = run_epoch(a, 0), eb = run_epoch(b, 0);
  EXPECT_EQ(ea.indices, eb.indices);  // replacements are deterministic too
  EXPECT_EQ(ea.v1, eb.v1);
  for (const auto& batch : ea.indices)
    for (int32_t i : batch) EXPECT_EQ(bad.count(i), 0u) << "bad image " << i << " in a batch";
  const EpochReport r = a.report(), rb = b.report();
  EXPECT_GE(r.bad, 3);  // 28 of 30 visited: at least 3 of the 5 bad ones
  EXPECT_EQ(r.bad, rb.bad);
  ASSERT_FALSE(r.examples.empty());
  EXPECT_LE(r.examples.size(), 5u);
  EXPECT_EQ(r.examples.front().name.rfind("bad", 0), 0u);
  EXPECT_EQ(r.examples[0].slot, rb.examples[0].slot);
  for (size_t i = 1; i < r.examples.size(); ++i) EXPECT_LE(r.examples[i - 1].slot, r.examples[i].slot);
}

TEST(Loader, AllBadFailsWithAClearErrorInsteadOfHanging) {
  std::set<int> all;
  for (int i = 0; i < 8; ++i) all.insert(i);
  LoaderConfig c = pretrain_cfg(2);
  c.max_attempts = 4;
  Loader l(encoded(8, all), c);
  l.start_epoch(0);
  try {
    l.next();
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("no readable image after 4 attempts"), std::string::npos) << e.what();
  }
}

TEST(Loader, RejectsBadConfigurations) {
  auto ds = encoded(6);
  LoaderConfig c = pretrain_cfg(1, 8);
  EXPECT_THROW(Loader(ds, c), DataError);  // 6 images, batch 8, drop_last: no batch at all
  c = pretrain_cfg(1);
  c.views[0].jitter_p = 1.5;
  try {
    Loader l(ds, c);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_EQ(e.kind(), DataError::Kind::RangeError);
    EXPECT_NE(std::string(e.what()).find("view1.jitter.p"), std::string::npos);
  }
  Loader l(ds, pretrain_cfg(1));
  EXPECT_THROW(l.next(), DataError);  // before start_epoch
  l.close();
  EXPECT_THROW(l.start_epoch(0), DataError);
}

TEST(Loader, PixelDatasetGrayToRgb) {
  std::vector<uint8_t> px(5 * 28 * 28);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 7);
  auto ds = std::make_shared<PixelDataset>(px, 5, 28, 28, 1, std::vector<int32_t>{0, 1, 2, 3, 4}, "mem");
  LoaderConfig c;
  c.batch_size = 5;
  c.views = {ViewConfig::validation()};
  c.views[0].resize = 0;
  c.views[0].out_h = c.views[0].out_w = 28;
  c.views[0].mean = {0, 0, 0};
  c.views[0].std = {1, 1, 1};
  c.sampler.shuffle = false;
  Loader l(ds, c);
  l.start_epoch(0);
  auto b = l.next();
  ASSERT_TRUE(b);
  const float* v = b->views[0].get();
  for (int i = 0; i < 28 * 28; ++i) {
    ASSERT_EQ(v[i * 3], px[size_t(i)] / 255.0f);
    ASSERT_EQ(v[i * 3 + 1], v[i * 3]);
    ASSERT_EQ(v[i * 3 + 2], v[i * 3]);
  }
}

// The engine uses loader batches in place without scanning them, so the loader guarantees
// finiteness: a normalisation that overflows a level is refused up front, naming the view and
// channel; an extreme one that stays finite is accepted and every value it produces is finite.
TEST(Loader, BatchesAreFiniteOrTheConfigurationIsRefused) {
  auto ds = encoded(8);
  LoaderConfig c = pretrain_cfg(1);
  c.views[1].std = {0.2f, 1e-40f, 0.2f};  // (0/255 − 0.456) / 1e-40 overflows float
  try {
    Loader l(ds, c);
    FAIL() << "a non-finite normalisation was accepted";
  } catch (const DataError& e) {
    EXPECT_EQ(e.kind(), DataError::Kind::RangeError);
    const std::string m = e.what();
    EXPECT_NE(m.find("view2.std: channel 1"), std::string::npos) << m;
    EXPECT_NE(m.find("inf"), std::string::npos) << m;
  }
  c.views[1].std = {0.2f, 1e-30f, 0.2f};  // |(v/255 − mean)/std| <= 1e30: finite
  c.views[1].mean = {0.f, 1.f, 0.5f};
  Loader l(ds, c);
  l.start_epoch(0);
  int batches = 0;
  float biggest = 0;
  while (auto b = l.next()) {
    ++batches;
    for (const Buffer& v : b->views)
      for (size_t i = 0; i < size_t(b->size) * 24 * 24 * 3; ++i) {
        ASSERT_TRUE(std::isfinite(v.get()[i])) << i;
        biggest = std::max(biggest, std::fabs(v.get()[i]));
      }
  }
  EXPECT_EQ(batches, 2);
  EXPECT_GT(biggest, 1e28f);  // the extreme channel really was exercised
}

// Epoch permutations and DistributedSampler-style sharding.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "data/common.h"
#include "data/sampler.h"

using namespace m2t::data;

TEST(Sampler, PermutationPerEpochSeeded) {
  const auto a = epoch_permutation(1000, 7, 0), b = epoch_permutation(1000, 7, 0);
  const auto c = epoch_permutation(1000, 7, 1), d = epoch_permutation(1000, 8, 0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  auto s = a;
  std::sort(s.begin(), s.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(s[size_t(i)], i);
}

TEST(Sampler, ShardsPadLikeDistributedSampler) {
  // 10 samples on 4 ranks: 12 slots, the first two repeated; rank r takes slots r, r+4, r+8.
  SamplerConfig cfg;
  cfg.seed = 3;
  cfg.world = 4;
  const auto perm = epoch_permutation(10, 3, 5);
  std::multiset<int64_t> all;
  std::set<int64_t> slots;
  for (int r = 0; r < 4; ++r) {
    cfg.rank = r;
    const auto items = shard_epoch(10, cfg, 5);
    ASSERT_EQ(items.size(), 3u);
    for (size_t k = 0; k < items.size(); ++k) {
      EXPECT_EQ(items[k].slot, r + int64_t(k) * 4);
      EXPECT_EQ(items[k].index, perm[size_t(items[k].slot % 10)]);
      all.insert(items[k].index);
      slots.insert(items[k].slot);
    }
  }
  EXPECT_EQ(slots.size(), 12u);
  for (int64_t i = 0; i < 10; ++i) EXPECT_GE(all.count(i), 1u);
  EXPECT_EQ(all.count(perm[0]), 2u);
  EXPECT_EQ(all.count(perm[1]), 2u);
}

TEST(Sampler, NoShuffleIsIdentityOrder) {
  SamplerConfig cfg;
  cfg.shuffle = false;
  cfg.world = 2;
  cfg.rank = 1;
  const auto items = shard_epoch(5, cfg, 9);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].index, 1);
  EXPECT_EQ(items[1].index, 3);
  EXPECT_EQ(items[2].index, 0);  // padding wraps to the head
}

TEST(Sampler, RejectsBadRank) {
  SamplerConfig cfg;
  cfg.world = 2;
  cfg.rank = 2;
  EXPECT_THROW(shard_epoch(5, cfg, 0), DataError);
  cfg.rank = 0;
  EXPECT_THROW(shard_epoch(0, cfg, 0), DataError);
}

// Epoch order, PyTorch DistributedSampler-style: a seeded permutation per epoch (or identity),
// padded by repeating its head until it divides evenly by the world size, then rank r takes
// positions r, r+world, r+2·world, … Each entry keeps its position in the padded order
// ("slot"), which keys the sample's random augmentation draws.
#pragma once
#include <cstdint>
#include <vector>

namespace m2t::data {

struct ShardItem {
  int64_t slot;   // position in the epoch's padded global order
  int64_t index;  // dataset index
};

struct SamplerConfig {
  uint64_t seed = 0;
  int rank = 0, world = 1;
  bool shuffle = true;
};

// The epoch's permutation of [0, n): Fisher–Yates from the stream (seed, Permutation, epoch).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

// This rank's items for the epoch: ceil(n / world) of them.
std::vector<ShardItem> shard_epoch(int64_t n, const SamplerConfig& cfg, int64_t epoch);

// ceil(n / world): items per rank per epoch.
inline int64_t per_rank(int64_t n, int world) { return (n + world - 1) / world; }

}  // namespace m2t::data

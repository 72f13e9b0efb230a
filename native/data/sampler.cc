#include "sampler.h"

#include <numeric>
#include <utility>

#include "common.h"
#include "rng.h"

namespace m2t::data {

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t(0));
  Rng rng(stream_key(seed, Stream::Permutation, uint64_t(epoch)));
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(rng.below(uint64_t(i) + 1))]);
  return p;
}

std::vector<ShardItem> shard_epoch(int64_t n, const SamplerConfig& cfg, int64_t epoch) {
  if (n <= 0) throw DataError("sampler: the dataset is empty");
  if (cfg.world < 1 || cfg.rank < 0 || cfg.rank >= cfg.world)
    throw DataError(cat("sampler: rank ", cfg.rank, " is not in [0, worldSize = ", cfg.world, ")"),
                    DataError::Kind::RangeError);
  std::vector<int64_t> order;
  if (cfg.shuffle) order = epoch_permutation(n, cfg.seed, epoch);
  const int64_t m = per_rank(n, cfg.world);
  std::vector<ShardItem> out(static_cast<size_t>(m));
  for (int64_t k = 0; k < m; ++k) {
    const int64_t slot = cfg.rank + k * cfg.world;  // padded position; wraps onto the head
    const int64_t pos = slot % n;
    out[size_t(k)] = {slot, cfg.shuffle ? order[size_t(pos)] : pos};
  }
  return out;
}

}  // namespace m2t::data

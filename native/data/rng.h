// Counter-based randomness. Every random draw of the pipeline comes from a stream whose key is a
// hash of (seed, purpose, coordinates…), e.g. (seed, view, epoch, slot, view index), so results do
// not depend on thread count, scheduling or on how many draws other samples made.
#pragma once
#include <cmath>
#include <cstdint>

namespace m2t::data {

// SplitMix64's output function (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Purposes, so that streams for different jobs never share a key.
enum class Stream : uint64_t { Permutation = 1, View = 2, Replacement = 3, Crop = 4, Color = 5 };

inline uint64_t stream_key(uint64_t seed, Stream purpose, uint64_t a = 0, uint64_t b = 0,
                           uint64_t c = 0) {
  uint64_t h = mix64(seed + 0x9E3779B97F4A7C15ULL);
  h = mix64(h ^ (static_cast<uint64_t>(purpose) * 0xD1B54A32D192ED03ULL));
  h = mix64(h ^ (a + 0x632BE59BD9B4E019ULL));
  h = mix64(h ^ (b + 0x8CB92BA72F3D8DD7ULL));
  h = mix64(h ^ (c + 0x3C6EF372FE94F82BULL));
  return h;
}

// SplitMix64 generator: state advances by the golden-ratio increment, output = mix64(state).
class Rng {
 public:
  explicit Rng(uint64_t key) : state_(key) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix64(state_);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // exp(U(log lo, log hi)): the aspect-ratio draw of RandomResizedCrop.
  double log_uniform(double lo, double hi) { return std::exp(uniform(std::log(lo), std::log(hi))); }
  // Integer in [0, n) by Lemire's multiply-shift (bias < n/2^64, negligible).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Always consumes one draw, so a probability change never shifts the draws after it.
  bool chance(double p) { return uniform() < p; }

 private:
  uint64_t state_;
};

}  // namespace m2t::data

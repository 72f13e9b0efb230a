// Counter-based random numbers: value i of a stream is a pure function of (key, i), so results
// never depend on thread count or call order.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

namespace m2t::rng {

inline uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  uint64_t z = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 random bits.
inline double uniform24(uint64_t key, uint64_t i) {
  return static_cast<double>(splitmix64(key + i) >> 40) / 16777216.0;
}

// Uniform in (0, 1) with 53 random bits.
inline double uniform53(uint64_t key, uint64_t i) {
  return (static_cast<double>(splitmix64(key + i) >> 11) + 0.5) / 9007199254740992.0;
}

// Standard normal via Box–Muller on the pair (2i, 2i+1).
inline double normal(uint64_t key, uint64_t i) {
  const double u1 = uniform53(key, 2 * i), u2 = uniform53(key, 2 * i + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace m2t::rng

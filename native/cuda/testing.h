// Helpers for the GPU tests (ctest label "gpu"): skip with the reason when there is no device, device buffers
// that are NaN-poisoned before every kernel call, host↔device copies.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cuda/check.h"

// First statement of every GPU test: no device → GTEST_SKIP with why (ctest then counts it as skipped).
#define M2T_REQUIRE_CUDA_DEVICE()                                                   \
  do {                                                                              \
    if (::m2t::cuda::device_count() == 0) GTEST_SKIP() << ::m2t::cuda::device_summary(); \
  } while (0)

namespace m2t::cuda::testing {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { M2T_CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T))); }
  explicit DeviceBuffer(const std::vector<T>& h) : DeviceBuffer(h.size()) { upload(h); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& h) {
    M2T_CUDA_CHECK(cudaMemcpy(p_, h.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    M2T_CUDA_CHECK(cudaDeviceSynchronize());
    M2T_CUDA_CHECK(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  // All bytes 0xFF: a quiet NaN for float, bf16 and double, so a kernel that skips an output is caught.
  void poison() { M2T_CUDA_CHECK(cudaMemset(p_, 0xFF, n_ * sizeof(T))); }

 private:
  T* p_ = nullptr;
  size_t n_;
};

inline std::vector<float> randn(size_t n, uint32_t seed, float mean = 0.0f, float sd = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// max |a−b| / (atol + rtol·|b|) ≤ 1 for every element, with the first offender reported.
inline ::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<float>& want,
                                            float rtol, float atol) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    const float d = std::fabs(got[i] - want[i]);
    if (!(d <= atol + rtol * std::fabs(want[i])))  // also fails on NaN (an unwritten, poisoned output)
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want " << want[i]
                                           << " (|diff| " << d << " > " << atol << " + " << rtol << "·|want|)";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace m2t::cuda::testing

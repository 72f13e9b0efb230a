// Parameter updates on CUDA over flat fp32 arenas (every parameter of a model back to back), one launch for
// EMA and SGD, three for LARS (per-tensor norms need a reduction). Free launchers on raw device pointers and a
// stream; a backend class wraps them. Math as in update_cpu.cc and spec §3–4. No atomics: results are
// bit-identical from run to run.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace m2t::cuda {

// teacher[i] ← τ·teacher[i] + (1−τ)·student[i], i < n (spec §3.1).
void ema(float* teacher, const float* student, int64_t n, float tau, cudaStream_t stream);

// SGD, PyTorch semantics (spec §4): d = g + wd·p; buf = μ·buf + d (buf = d when first); p ← p − lr·buf.
void sgd(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd, bool first,
         cudaStream_t stream);

// LARS (spec §4) over an arena of tensors. The layout is fixed for a run, so the caller builds a plan once
// (lars_plan), copies its two arrays to the device and passes them to every lars() call.
struct LarsTensor {
  int64_t offset;  // first element in the arena
  int64_t size;    // elements
  bool adapt;      // conv/linear weight: trust ratio applies; BN γ/β and biases: actual_lr = lr
};
struct LarsChunk {  // a run of ≤ kLarsChunk elements of one tensor: the unit of work of every LARS kernel
  int64_t begin;
  int32_t length;
  int32_t tensor;
};
constexpr int kLarsChunk = 8192;
struct LarsPlan {
  std::vector<LarsChunk> chunks;
  std::vector<int32_t> first_chunk;  // tensor t owns chunks [first_chunk[t], first_chunk[t+1]); size tensors+1
  std::vector<uint8_t> adapt;        // per tensor
};
LarsPlan lars_plan(const std::vector<LarsTensor>& tensors);

// Device arrays: chunks/first_chunk/adapt copied from the plan; partial: 2·chunks doubles of workspace;
// norms: 2·tensors doubles out (‖p‖, ‖g‖ per tensor, before the update). For tensor t with adapt[t] and
// ‖p‖·‖g‖ > 1e-8: actual_lr = lr·η·‖p‖/(‖g‖ + wd·‖p‖), else lr; buf ← μ·buf + actual_lr·(g + wd·p); p ← p − buf.
// The buffer starts at zeros (the caller's), as in the reference.
void lars(float* p, const float* g, float* buf, const LarsChunk* chunks, int32_t n_chunks, const int32_t* first_chunk,
          const uint8_t* adapt, int32_t n_tensors, double* partial, double* norms, double lr, float momentum, float wd,
          double eta, cudaStream_t stream);

}  // namespace m2t::cuda

// Collectives across data-parallel processes (docs/algorithm.md, "Data parallelism"). One process:
// nothing to do.
// Gloo (CPU, comm/gloo_comm.h), NCCL (GPU, comm/nccl_comm.h, built with the CUDA part); the step's gradients
// go through comm/grad_bucketer.h.
#pragma once
#include <cstddef>

#include "core/tensor.h"

namespace m2t {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place: x[0..n) ← Σ over processes (memory of the data's device).
  virtual void allreduce_sum(float* x, size_t n) = 0;
  void allreduce_sum(Tensor& x) { allreduce_sum(x.data(), static_cast<size_t>(x.numel())); }
  // The same sum on the gradient channel: what the step's communication thread (GradBucketer) calls
  // while the backward pass runs. An implementation gives it resources of its own (Gloo: a second
  // context), so it never interleaves with allreduce_sum/barrier calls from other threads; collectives
  // on each channel are issued in the same order on every rank.
  virtual void allreduce_grads(float* x, size_t n) { allreduce_sum(x, n); }
  // Host memory: x ← (Σ over processes) · scale on the gradient channel (the bucketer's mean). The same
  // bits as the sum followed by one float multiply per element, which is what this does; an
  // implementation may fuse the multiply into its last pass over the data (shared memory does).
  virtual void allreduce_grads_scaled(float* x, size_t n, float scale) {
    allreduce_grads(x, n);
    for (size_t i = 0; i < n; ++i) x[i] *= scale;
  }
};

class LocalComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
};

}  // namespace m2t

// Collectives across data-parallel processes (docs/algorithm.md, "Data parallelism"). One process:
// nothing to do.
// NCCL (GPU) and Gloo (CPU) implementations come with multi-process training.
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
  // A whole flat gradient arena in one call (what the step uses; buckets come with overlap).
  void allreduce_sum(Tensor& x) { allreduce_sum(x.data(), static_cast<size_t>(x.numel())); }
};

class LocalComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
};

}  // namespace m2t

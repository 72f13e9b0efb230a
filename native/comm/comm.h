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
  // In place: x ← Σ over processes of x (a whole flat gradient arena, on its device).
  virtual void allreduce_sum(Tensor& x) = 0;
};

class LocalComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void allreduce_sum(Tensor&) override {}
};

}  // namespace m2t

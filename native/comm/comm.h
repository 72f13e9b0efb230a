// Collectives across data-parallel processes (spec §8). One process: nothing to do.
// NCCL (GPU) and Gloo (CPU) implementations come with multi-process training.
#pragma once
#include <cstddef>

namespace m2t {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place: x ← Σ over processes of x.
  virtual void allreduce_sum(float* x, size_t n) = 0;
};

class LocalComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
};

}  // namespace m2t

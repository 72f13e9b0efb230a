// NCCL collectives for GPU processes, one process per device (docs/algorithm.md, "Data parallelism").
// Built with the CUDA part only (comm/nccl_comm_cuda.cc, in m2t_cuda). The rendezvous — rank 0's unique id
// reaching every rank — belongs to the caller (the TCP store that Gloo uses too), so this class needs no
// CPU-side comm code and the standalone device build can test it.
//
// Every wait is bounded: the communicator is created non-blocking and each collective is polled, so a rank
// that dies or hangs makes the others fail with a message within `timeout_ms` instead of blocking forever.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "comm/comm.h"

namespace m2t {

class NcclComm final : public Comm {
 public:
  using Id = std::array<char, 128>;  // NCCL_UNIQUE_ID_BYTES
  // A fresh unique id (rank 0 makes it; every rank passes the same bytes to the constructor).
  static Id make_id();
  // Joins the group on CUDA device `device`; throws m2t::Error naming the rank when it does not complete
  // within timeout_ms (a peer missing) or NCCL reports an error.
  NcclComm(int rank, int world_size, const Id& id, int device, int64_t timeout_ms = 300000);
  ~NcclComm() override;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  // x: device memory on this comm's device. In place sum over ranks, on this comm's stream; returns when done.
  void allreduce_sum(float* x, size_t n) override;

 private:
  void wait(const char* what);  // the stream drained, or an error / timeout (the communicator is then aborted)
  void abort_comm();

  int rank_, world_, device_;
  int64_t timeout_ms_;
  void* comm_ = nullptr;    // ncclComm_t
  void* stream_ = nullptr;  // cudaStream_t
};

}  // namespace m2t

// Collectives between CPU processes over TCP with Gloo (Debian's libgloo). Ranks meet through the
// TCP store (rank 0 serves it at the master address): each publishes its Gloo address and connects to
// every other rank (full mesh). A rank that dies or stops answering makes the others' collectives
// fail within the timeout, with an Error naming the operation, instead of hanging.
// When every rank runs on this machine, the sums (both channels) go through shared memory instead
// (comm/shm_comm.h: no socket copies, no I/O thread); barriers stay on Gloo. M2T_SHM=0 in any rank's
// environment keeps the group on TCP; a segment that cannot be set up does too, with a line on stderr.
#pragma once
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "comm/comm.h"
#include "comm/shm_comm.h"

namespace gloo {
class Context;
}

namespace m2t {

class TcpStoreServer;

struct GlooOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";  // where rank 0 serves the store
  int master_port = 29500;
  std::string interface_host = "";  // this rank's address for Gloo's pairs ("" = the one routing to the master)
  std::chrono::milliseconds timeout{60000};
  ShmOptions shm;  // enabled unless M2T_SHM=0 in the environment
};

class GlooComm final : public Comm {
 public:
  explicit GlooComm(const GlooOptions& o);
  ~GlooComm() override;
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  void allreduce_sum(float* x, size_t n) override;
  void allreduce_grads(float* x, size_t n) override;
  void allreduce_grads_scaled(float* x, size_t n, float scale) override;
  // timeout 0: the group's own; longer waits (rank 0 evaluating while the others wait) pass their own.
  void barrier(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // "shm" (sums through shared memory) or "tcp"; why_not_shm() says why not ("" in a world of one).
  const char* transport() const { return shm_ ? "shm" : "tcp"; }
  const std::string& why_not_shm() const { return why_not_shm_; }

 private:
  int rank_, world_size_;
  std::unique_ptr<TcpStoreServer> server_;  // rank 0 only
  std::shared_ptr<gloo::Context> context_;
  uint32_t tag_ = 0;
  std::mutex mu_;  // one collective at a time (a model's step and JS calls may share the group)
  // The gradient channel (Comm::allreduce_grads): its own context and tags; the lock only guards
  // against a second model stepping on the same group at once.
  std::shared_ptr<gloo::Context> grads_context_;
  uint32_t grads_tag_ = 0;
  std::mutex grads_mu_;
  std::string why_not_shm_;
  std::unique_ptr<ShmGroup> shm_;  // last: closed first, so peers waiting on this rank fail at once
};

}  // namespace m2t

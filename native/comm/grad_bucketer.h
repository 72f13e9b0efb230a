// The step's gradient all-reduce, bucketed and overlapped with the backward pass (docs/algorithm.md,
// "Data parallelism"). The flat gradient arena (core/param.h) is cut into buckets: contiguous ranges of
// whole parameter segments, formed from the arena's end (the backward pass finishes the predictor first
// and conv1 last, the reverse of registration order), each closed once it holds ≥ bucket_bytes. Together
// they cover the arena exactly, padding included, so every element is summed once, as in one pass.
//
// Per step: begin(); ready(p) as each parameter's gradient becomes final; finish() once the backward is
// done (every gradient is final then: buckets whose parameters were never reported are released too).
// A bucket whose parameters are all final goes to the communication thread, which all-reduces the buckets
// strictly in bucket order (the same order on every rank, whatever order they become ready in) on the
// gradient channel (Comm::allreduce_grads) and scales them by 1/world size; finish() waits for all of them
// and rethrows the thread's error. Without overlap the same buckets are reduced in finish(), in order.
//
// Same sums per element as one pass over the arena: Gloo's ring adds the ranks' values of an element in
// an order that depends on where the element falls in the buffer; with 2 ranks that is a + b either way
// (IEEE addition commutes), so any bucketing is bitwise the one-pass result. With 3+ ranks the order can
// differ from one pass (last-bit differences), but overlapped and blocking bucketing agree bitwise, and
// every rank gets the same bits (Gloo's all-gather copies the reduced chunk). Ranks on one machine sum
// through shared memory (comm/shm_comm.h) in rank order for every element: any bucketing is bitwise the
// one pass at any world size.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "comm/comm.h"
#include "core/param.h"

namespace m2t {

struct GradSyncConfig {
  int64_t bucket_bytes = int64_t(25) << 20;  // ≤ 0: one bucket, the whole arena
  bool overlap = true;                       // false: reduce the buckets in finish(), on the caller's thread
};

class GradBucketer {
 public:
  struct Bucket {
    int64_t begin, end;  // element range of the arena
    int params;          // parameters whose segments lie in it
  };

  // grads: the arena's gradient buffer (host memory); segments/params: its layout (ParamArena::Flat).
  GradBucketer(Comm& comm, float* grads, int64_t numel, const std::vector<Segment>& segments,
               const std::vector<Param*>& params, const GradSyncConfig& cfg);
  ~GradBucketer();
  GradBucketer(const GradBucketer&) = delete;
  GradBucketer& operator=(const GradBucketer&) = delete;

  // Starts a step: waits for anything left in flight by a failed step, then marks every bucket pending.
  void begin();
  // p's gradient is final for this step. Parameters not in the arena are ignored.
  void ready(const Param& p);
  // The backward is done: releases every bucket, waits until all are reduced and scaled; rethrows the
  // communication thread's error (a dead or hung rank).
  void finish();

  const std::vector<Bucket>& buckets() const { return buckets_; }
  // Buckets of the last step released by ready() (before finish()): all of them when every parameter
  // is reported during the backward.
  int released_early() const { return early_; }

 private:
  void release(size_t b);  // under mu_
  void reduce(size_t b);   // Σ over ranks, then × 1/world size
  void loop();

  Comm& comm_;
  float* grads_;
  GradSyncConfig cfg_;
  float inv_world_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const Param*, size_t> bucket_of_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> pending_;      // parameters not yet final, per bucket
  std::vector<char> released_;    // bucket may be reduced
  std::unordered_set<const Param*> seen_;  // reported this step
  size_t next_ = 0;               // next bucket the thread reduces
  int early_ = 0;
  bool active_ = false;           // a step is between begin() and the thread's last bucket
  bool in_flight_ = false;        // the thread is inside reduce()
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace m2t

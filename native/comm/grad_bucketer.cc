#include "comm/grad_bucketer.h"

#include "core/error.h"

namespace m2t {

GradBucketer::GradBucketer(Comm& comm, float* grads, int64_t numel, const std::vector<Segment>& segments,
                           const std::vector<Param*>& params, const GradSyncConfig& cfg)
    : comm_(comm), grads_(grads), cfg_(cfg), inv_world_(1.0f / static_cast<float>(comm.world_size())) {
  M2T_CHECK(segments.size() == params.size(), "gradient bucketer: ", segments.size(), " segments for ",
            params.size(), " parameters");
  // Walk the segments from the arena's end; a bucket closes once it holds ≥ bucket_bytes. The last one
  // reaches down to element 0 and the first up to numel, so the buckets tile [0, numel).
  const int64_t cap = cfg.bucket_bytes > 0 ? cfg.bucket_bytes / int64_t(sizeof(float)) : numel + 1;
  int64_t end = numel;
  int count = 0;
  for (size_t i = segments.size(); i-- > 0;) {
    bucket_of_[params[i]] = buckets_.size();
    ++count;
    if (end - segments[i].offset >= cap || i == 0) {
      buckets_.push_back({i == 0 ? 0 : segments[i].offset, end, count});
      end = segments[i].offset;
      count = 0;
    }
  }
  if (buckets_.empty() && numel > 0) buckets_.push_back({0, numel, 0});
  pending_.assign(buckets_.size(), 0);
  released_.assign(buckets_.size(), 0);
  if (cfg_.overlap && comm_.world_size() > 1) thread_ = std::thread([this] { loop(); });
}

GradBucketer::~GradBucketer() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();  // a bucket in flight ends (or fails) within the comm's timeout
}

void GradBucketer::begin() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return !in_flight_; });  // a failed step may have left one running
  error_ = nullptr;
  next_ = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    pending_[b] = buckets_[b].params;
    released_[b] = 0;
  }
  seen_.clear();
  early_ = 0;
  active_ = true;
}

void GradBucketer::release(size_t b) {
  if (released_[b]) return;
  released_[b] = 1;
  cv_.notify_all();
}

void GradBucketer::ready(const Param& p) {
  auto it = bucket_of_.find(&p);
  if (it == bucket_of_.end()) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (!active_ || !seen_.insert(&p).second) return;  // counted once per step
  if (--pending_[it->second] == 0) {
    release(it->second);
    ++early_;
  }
}

void GradBucketer::reduce(size_t b) {
  const Bucket& k = buckets_[b];
  float* x = grads_ + k.begin;
  const int64_t n = k.end - k.begin;
  // The mean: the sum, then the same float multiply as Backend::scale, element by element.
  comm_.allreduce_grads_scaled(x, static_cast<size_t>(n), inv_world_);
}

void GradBucketer::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || (active_ && next_ < buckets_.size() && released_[next_]); });
    if (stop_) return;
    const size_t b = next_;
    in_flight_ = true;
    lk.unlock();
    std::exception_ptr err;
    try {
      reduce(b);
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    in_flight_ = false;
    if (err) {
      error_ = err;
      active_ = false;
    } else if (++next_ == buckets_.size()) {
      active_ = false;
    }
    cv_.notify_all();
  }
}

void GradBucketer::finish() {
  if (!thread_.joinable()) {  // blocking (or one process): the same buckets, in order, here
    {
      std::lock_guard<std::mutex> lk(mu_);
      active_ = false;
    }
    if (comm_.world_size() > 1)
      for (size_t b = 0; b < buckets_.size(); ++b) reduce(b);
    return;
  }
  std::unique_lock<std::mutex> lk(mu_);
  M2T_CHECK(active_ || error_ || next_ == buckets_.size(), "gradient bucketer: finish() without begin()");
  for (size_t b = 0; b < buckets_.size(); ++b) release(b);  // every gradient is final now
  cv_.wait(lk, [&] { return !active_; });
  if (error_) {
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

}  // namespace m2t

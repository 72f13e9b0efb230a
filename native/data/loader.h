// The batch loader: a pool of native threads decodes and augments samples straight into
// recycled NHWC float32 batch buffers, several batches ahead of the consumer. Batches come out
// in order; their content depends only on (seed, epoch, slot, view), never on thread count.
// Unreadable files are replaced deterministically, counted and reported per epoch.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dataset.h"
#include "pipeline.h"
#include "sampler.h"

namespace m2t::data {

struct LoaderConfig {
  int batch_size = 32;
  std::vector<ViewConfig> views;  // two for pre-training, one for evaluation
  SamplerConfig sampler;
  bool drop_last = true;  // pre-training drops the last partial batch; evaluation keeps it
  int threads = 1;
  int prefetch = 2;       // batches being prepared ahead of the consumer
  int max_attempts = 16;  // reads per slot before the batch fails (all replacements bad)
  int max_examples = 5;   // bad files listed by name in a report
};

struct BadSample {
  int64_t slot = 0, index = 0;
  int attempt = 0;
  std::string name, error;
};

struct EpochReport {
  int64_t epoch = -1;
  int64_t bad = 0;                  // unreadable reads this epoch (each replaced)
  std::vector<BadSample> examples;  // the first few, by slot
};

// Float storage handed out by a pool; dropping the last reference returns it.
using Buffer = std::shared_ptr<float>;

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  BufferPool(size_t floats, size_t keep) : floats_(floats), keep_(keep) {}
  ~BufferPool();
  Buffer acquire();
  size_t floats() const { return floats_; }

 private:
  void give_back(float* p);
  std::mutex mu_;
  std::vector<float*> free_;
  size_t floats_, keep_;
};

struct Batch {
  int64_t epoch = 0, index = 0;
  int size = 0;                       // images in this batch (the last eval batch may be short)
  std::vector<Buffer> views;          // one [size, h, w, 3] block per view
  std::vector<int32_t> indices;       // dataset index of each image (after any replacement)
  std::vector<int32_t> labels;
};

class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, LoaderConfig cfg);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const { return batches_; }
  int64_t samples_per_rank() const { return per_rank_; }
  const LoaderConfig& config() const { return cfg_; }
  const Dataset& dataset() const { return *ds_; }

  // Starts (or restarts) producing `epoch` from batch `first_batch`; work queued for a previous
  // start is dropped. The order is a pure function of (seed, epoch, rank, world).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // Blocks until the next batch is ready; nullptr once the epoch is exhausted. Throws DataError
  // if a slot found no readable image in max_attempts tries, or the loader was closed/restarted.
  std::unique_ptr<Batch> next();
  // Bad-data report of the current epoch so far (complete once next() returned nullptr).
  EpochReport report() const;
  // Stops and joins the workers. Idempotent.
  void close();

 private:
  struct Job;
  struct Task {
    std::shared_ptr<Job> job;
    int item;
    ShardItem s;
  };
  void worker_main();
  void worker_loop();
  void process(const Task& t, Augmenter& aug, std::vector<uint8_t>& file_buf);
  void schedule_locked();
  void record_bad(const Job& job, const BadSample& b);

  std::shared_ptr<const Dataset> ds_;
  LoaderConfig cfg_;
  int64_t n_ = 0, per_rank_ = 0, batches_ = 0;
  std::vector<size_t> view_floats_;  // floats per image, per view
  std::shared_ptr<BufferPool> pools_[2];

  mutable std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::deque<Task> queue_;
  std::deque<std::shared_ptr<Job>> inflight_;
  std::vector<std::thread> workers_;
  bool stop_ = false, started_ = false;
  std::string fatal_;  // a worker died (e.g. out of memory): every next() fails with this
  uint64_t generation_ = 0;
  int64_t epoch_ = 0, next_schedule_ = 0, next_deliver_ = 0;
  std::vector<ShardItem> order_;
  EpochReport report_;
};

}  // namespace m2t::data

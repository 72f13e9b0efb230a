#include "loader.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace m2t::data {

BufferPool::~BufferPool() {
  for (float* p : free_) std::free(p);
}

Buffer BufferPool::acquire() {
  float* p = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!free_.empty()) {
      p = free_.back();
      free_.pop_back();
    }
  }
  if (!p) {
    const size_t bytes = (std::max<size_t>(floats_, 1) * sizeof(float) + 63) / 64 * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw DataError(cat("out of memory allocating a batch buffer of ", bytes, " bytes"));
  }
  std::weak_ptr<BufferPool> pool = shared_from_this();
  return Buffer(p, [pool](float* q) {
    if (auto alive = pool.lock()) alive->give_back(q);
    else std::free(q);
  });
}

void BufferPool::give_back(float* p) {
  std::lock_guard<std::mutex> lk(mu_);
  if (free_.size() < keep_) free_.push_back(p);
  else std::free(p);
}

struct Loader::Job {
  uint64_t generation = 0;
  int64_t epoch = 0, batch = 0;
  int n = 0;
  std::vector<Buffer> bufs;
  std::vector<int32_t> indices, labels;
  std::atomic<int> remaining{0};
  bool done = false;   // guarded by Loader::mu_
  std::string error;   // guarded by Loader::mu_
};

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderConfig cfg)
    : ds_(std::move(dataset)), cfg_(std::move(cfg)) {
  using K = DataError::Kind;
  if (!ds_) throw DataError("loader: no dataset", K::TypeError);
  if (cfg_.views.empty() || cfg_.views.size() > 2)
    throw DataError(cat("loader: 1 or 2 views per sample, got ", cfg_.views.size()), K::RangeError);
  for (size_t v = 0; v < cfg_.views.size(); ++v) {
    const ViewConfig& vc = cfg_.views[v];
    vc.validate(cat("view", v + 1));
    // Every float a batch holds is one of these 3 x 256 normalised levels: when they are all
    // finite, so is every batch, which the engine then uses in place without scanning it.
    float lut[3][256];
    normalize_lut(vc, lut);
    for (int c = 0; c < 3; ++c)
      for (int l = 0; l < 256; ++l)
        if (!std::isfinite(lut[c][l]))
          throw DataError(cat("view", v + 1, ".std: channel ", c, " (mean ", vc.mean[size_t(c)], ", std ",
                              vc.std[size_t(c)], ") normalises level ", l, " to ", lut[c][l],
                              "; every normalised value must be finite"), K::RangeError);
  }
  if (cfg_.batch_size < 1) throw DataError(cat("loader: batchSize must be >= 1, got ", cfg_.batch_size), K::RangeError);
  if (cfg_.threads < 1 || cfg_.threads > 1024) throw DataError(cat("loader: threads must be in [1, 1024], got ", cfg_.threads), K::RangeError);
  if (cfg_.prefetch < 1) throw DataError(cat("loader: prefetch must be >= 1, got ", cfg_.prefetch), K::RangeError);
  if (cfg_.max_attempts < 1) throw DataError("loader: maxAttempts must be >= 1", K::RangeError);
  if (cfg_.sampler.world < 1 || cfg_.sampler.rank < 0 || cfg_.sampler.rank >= cfg_.sampler.world)
    throw DataError(cat("loader: rank ", cfg_.sampler.rank, " is not in [0, worldSize = ", cfg_.sampler.world, ")"), K::RangeError);
  n_ = ds_->size();
  if (n_ <= 0) throw DataError("loader: the dataset is empty");
  per_rank_ = per_rank(n_, cfg_.sampler.world);
  batches_ = cfg_.drop_last ? per_rank_ / cfg_.batch_size : (per_rank_ + cfg_.batch_size - 1) / cfg_.batch_size;
  if (batches_ == 0)
    throw DataError(cat("loader: ", n_, " images over ", cfg_.sampler.world, " process(es) give ", per_rank_,
                        " per process, fewer than one batch of ", cfg_.batch_size,
                        " (the last partial batch is dropped)"), K::RangeError);
  for (size_t v = 0; v < cfg_.views.size(); ++v) {
    view_floats_.push_back(size_t(cfg_.views[v].out_h) * cfg_.views[v].out_w * 3);
    pools_[v] = std::make_shared<BufferPool>(view_floats_[v] * size_t(cfg_.batch_size), size_t(cfg_.prefetch) + 2);
  }
  for (int i = 0; i < cfg_.threads; ++i) workers_.emplace_back([this] { worker_main(); });
}

Loader::~Loader() { close(); }

void Loader::close() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && workers_.empty()) return;
    stop_ = true;
    queue_.clear();
  }
  cv_work_.notify_all();
  cv_done_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  if (epoch < 0) throw DataError(cat("loader: epoch must be >= 0, got ", epoch), DataError::Kind::RangeError);
  if (first_batch < 0 || first_batch > batches_)
    throw DataError(cat("loader: startBatch ", first_batch, " is not in [0, ", batches_, "]"), DataError::Kind::RangeError);
  std::vector<ShardItem> order = shard_epoch(n_, cfg_.sampler, epoch);
  std::lock_guard<std::mutex> lk(mu_);
  if (stop_) throw DataError("loader is closed");
  ++generation_;
  queue_.clear();
  inflight_.clear();
  order_ = std::move(order);
  epoch_ = epoch;
  next_schedule_ = next_deliver_ = first_batch;
  report_ = EpochReport{};
  report_.epoch = epoch;
  started_ = true;
  cv_done_.notify_all();  // a next() waiting on the old epoch gives up
  schedule_locked();
}

void Loader::schedule_locked() {
  const int B = cfg_.batch_size;
  while (int64_t(inflight_.size()) < cfg_.prefetch && next_schedule_ < batches_) {
    auto job = std::make_shared<Job>();
    job->generation = generation_;
    job->epoch = epoch_;
    job->batch = next_schedule_;
    const int64_t first = next_schedule_ * B;
    job->n = int(std::min<int64_t>(B, per_rank_ - first));
    for (size_t v = 0; v < cfg_.views.size(); ++v) job->bufs.push_back(pools_[v]->acquire());
    job->indices.assign(size_t(job->n), -1);
    job->labels.assign(size_t(job->n), -1);
    job->remaining = job->n;
    for (int i = 0; i < job->n; ++i) queue_.push_back({job, i, order_[size_t(first + i)]});
    inflight_.push_back(std::move(job));
    ++next_schedule_;
  }
  cv_work_.notify_all();
}

std::unique_ptr<Batch> Loader::next() {
  std::unique_lock<std::mutex> lk(mu_);
  if (stop_) throw DataError("loader is closed");
  if (!started_) throw DataError("loader: call startEpoch() before next()");
  if (next_deliver_ >= batches_) return nullptr;
  schedule_locked();
  std::shared_ptr<Job> job = inflight_.front();
  const uint64_t gen = generation_;
  cv_done_.wait(lk, [&] { return job->done || stop_ || generation_ != gen || !fatal_.empty(); });
  if (stop_) throw DataError("loader is closed");
  if (!fatal_.empty()) throw DataError(fatal_);
  if (generation_ != gen) throw DataError("loader: the epoch was restarted while waiting for a batch");
  inflight_.pop_front();
  ++next_deliver_;
  schedule_locked();
  if (!job->error.empty()) throw DataError(job->error);
  auto b = std::make_unique<Batch>();
  b->epoch = job->epoch;
  b->index = job->batch;
  b->size = job->n;
  b->views = std::move(job->bufs);
  b->indices = std::move(job->indices);
  b->labels = std::move(job->labels);
  return b;
}

EpochReport Loader::report() const {
  std::lock_guard<std::mutex> lk(mu_);
  return report_;
}

void Loader::record_bad(const Job& job, const BadSample& b) {
  std::lock_guard<std::mutex> lk(mu_);
  if (job.generation != generation_) return;
  ++report_.bad;
  // Keep the first few by (slot, attempt): the same set whatever the thread count.
  auto& ex = report_.examples;
  auto before = [](const BadSample& x, const BadSample& y) {
    return x.slot != y.slot ? x.slot < y.slot : x.attempt < y.attempt;
  };
  ex.insert(std::upper_bound(ex.begin(), ex.end(), b, before), b);
  if (int(ex.size()) > cfg_.max_examples) ex.pop_back();
}

void Loader::worker_main() {
  // Nothing may escape a thread (std::terminate): failures here fail the loader instead.
  try {
    worker_loop();
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lk(mu_);
    if (fatal_.empty()) fatal_ = cat("loader worker failed: ", e.what());
    cv_done_.notify_all();
  }
}

void Loader::worker_loop() {
  Augmenter aug;
  std::vector<uint8_t> file_buf;
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      t = std::move(queue_.front());
      queue_.pop_front();
    }
    process(t, aug, file_buf);
    if (t.job->remaining.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> lk(mu_);
      t.job->done = true;
      cv_done_.notify_all();
    }
  }
}

void Loader::process(const Task& t, Augmenter& aug, std::vector<uint8_t>& file_buf) {
  Job& job = *t.job;
  const int nv = int(cfg_.views.size());
  uint64_t keys[2];
  float* outs[2];
  for (int v = 0; v < nv; ++v) {
    keys[v] = stream_key(cfg_.sampler.seed, Stream::View, uint64_t(job.epoch), uint64_t(t.s.slot), uint64_t(v));
    outs[v] = job.bufs[size_t(v)].get() + size_t(t.item) * view_floats_[size_t(v)];
  }
  int64_t index = t.s.index;
  for (int attempt = 0;; ++attempt) {
    std::string error;
    try {
      aug.render(ds_->fetch(index, file_buf), cfg_.views.data(), keys, nv, outs);
      job.indices[size_t(t.item)] = int32_t(index);
      job.labels[size_t(t.item)] = ds_->label(index);
      return;
    } catch (const DataError& e) {
      error = e.what();
    } catch (const std::exception& e) {  // not the file's fault (e.g. out of memory): fail the batch
      std::lock_guard<std::mutex> lk(mu_);
      if (job.error.empty()) job.error = cat("loader: ", ds_->name(index), ": ", e.what());
      return;
    }
    record_bad(job, {t.s.slot, index, attempt, ds_->name(index), error});
    if (attempt + 1 >= cfg_.max_attempts) {
      std::lock_guard<std::mutex> lk(mu_);
      if (job.error.empty())
        job.error = cat("loader: no readable image after ", cfg_.max_attempts, " attempts for slot ", t.s.slot,
                        " of epoch ", job.epoch, " (", report_.bad, " unreadable so far; last: ",
                        ds_->name(index), ": ", error, ")");
      return;
    }
    // A deterministic replacement: a function of (seed, epoch, slot, attempt) only.
    Rng pick(stream_key(cfg_.sampler.seed, Stream::Replacement, uint64_t(job.epoch), uint64_t(t.s.slot), uint64_t(attempt)));
    index = int64_t(pick.below(uint64_t(n_)));
  }
}

}  // namespace m2t::data

// The bucketed, overlapped gradient all-reduce (comm/grad_bucketer.h): buckets tile the arena in backward
// order; a bucket is reduced only once all its parameters are final, in bucket order whatever order they
// become final in; and whole training steps (ranks as threads, Gloo over loopback) end bitwise where the
// blocking one-pass all-reduce ends, on every rank.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>

#include "comm/gloo_comm.h"
#include "comm/test_port.h"
#include "comm/grad_bucketer.h"
#include "core/error.h"
#include "models/m2t.h"
#include "tests/testutil.h"

using namespace std::chrono_literals;

namespace m2t {
namespace {

using test::free_port;

// A layout like ParamArena's: segments of the given sizes, each starting on a 16-float boundary.
struct Layout {
  std::vector<Param> params;
  std::vector<Param*> ptrs;
  std::vector<Segment> segments;
  int64_t numel = 0;
  explicit Layout(const std::vector<int64_t>& sizes) : params(sizes.size()) {
    for (size_t i = 0; i < sizes.size(); ++i) {
      params[i].name = "p" + std::to_string(i);
      ptrs.push_back(&params[i]);
      segments.push_back({numel, sizes[i], false});
      numel += (sizes[i] + 15) / 16 * 16;
    }
  }
  size_t index(int64_t element) const {  // the parameter whose padded segment holds `element`
    size_t i = 0;
    while (i + 1 < segments.size() && segments[i + 1].offset <= element) ++i;
    return i;
  }
};

// Records each all-reduce (range, and whether every parameter in it had been declared final) and stands in
// for a second rank holding the same values: Σ = 2x.
class RecordingComm final : public Comm {
 public:
  RecordingComm(const Layout& l, float* base, const std::vector<std::atomic<bool>>& final)
      : l_(l), base_(base), final_(final) {}
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void allreduce_sum(float*, size_t) override { ADD_FAILURE() << "the step must use the gradient channel"; }
  void allreduce_grads(float* x, size_t n) override {
    const int64_t b = x - base_;
    bool all_final = true;
    for (int64_t e = b; e < b + int64_t(n); ++e) all_final &= final_[l_.index(e)].load();
    calls.push_back({b, int64_t(n), all_final});
    for (size_t i = 0; i < n; ++i) x[i] += x[i];
  }
  struct Call {
    int64_t begin, n;
    bool all_final;
  };
  std::vector<Call> calls;  // written by the communication thread, read after finish()

 private:
  const Layout& l_;
  float* base_;
  const std::vector<std::atomic<bool>>& final_;
};

TEST(GradBucketer, BucketsTileTheArenaFromItsEndInBackwardOrder) {
  Layout l({100, 7, 3000, 50, 50, 1000, 20});
  std::vector<float> g(l.numel);
  LocalComm one;
  GradBucketer b(one, g.data(), l.numel, l.segments, l.ptrs, {4000, true});  // 1000 floats
  const auto& k = b.buckets();
  ASSERT_GE(k.size(), 3u);
  EXPECT_EQ(k.front().end, l.numel);
  EXPECT_EQ(k.back().begin, 0);
  int params = 0;
  for (size_t i = 0; i < k.size(); ++i) {
    params += k[i].params;
    if (i + 1 < k.size()) {
      EXPECT_EQ(k[i].begin, k[i + 1].end) << "bucket " << i;
      EXPECT_GE(k[i].end - k[i].begin, 1000) << "bucket " << i << " closed before reaching the cap";
    }
  }
  EXPECT_EQ(params, 7);
  // [20, 1000] close the first bucket (1040 floats), then [50, 50, 3000], then [7, 100].
  EXPECT_EQ(k.size(), 3u);
  EXPECT_EQ(k[0].params, 2);
  EXPECT_EQ(k[1].params, 3);
  EXPECT_EQ(k[2].params, 2);

  GradBucketer whole(one, g.data(), l.numel, l.segments, l.ptrs, {0, true});
  ASSERT_EQ(whole.buckets().size(), 1u);
  EXPECT_EQ(whole.buckets()[0].begin, 0);
  EXPECT_EQ(whole.buckets()[0].end, l.numel);
}

TEST(GradBucketer, ABucketGoesOnlyWhenFinalAndBucketsGoInOrder) {
  Layout l({300, 300, 300, 300, 300, 300, 300, 300});
  std::vector<float> g(l.numel);
  std::vector<std::atomic<bool>> final(l.params.size());
  RecordingComm comm(l, g.data(), final);
  GradBucketer b(comm, g.data(), l.numel, l.segments, l.ptrs, {2000, true});  // 2 parameters a bucket
  ASSERT_EQ(b.buckets().size(), 4u);
  std::mt19937 rng(7);
  for (int step = 0; step < 3; ++step) {
    for (int64_t i = 0; i < l.numel; ++i) g[i] = float(i % 13 + step);
    for (auto& f : final) f = false;
    comm.calls.clear();
    b.begin();
    // Gradients become final in a shuffled order, the main thread working a little between them.
    std::vector<size_t> order(l.params.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      std::this_thread::sleep_for(1ms);
      final[i] = true;
      b.ready(l.params[i]);
      b.ready(l.params[i]);  // a second report changes nothing
    }
    b.finish();
    ASSERT_EQ(comm.calls.size(), 4u);
    for (size_t c = 0; c < 4; ++c) {
      EXPECT_EQ(comm.calls[c].begin, b.buckets()[c].begin) << "call " << c << " out of bucket order";
      EXPECT_TRUE(comm.calls[c].all_final) << "bucket " << c << " was reduced before its gradients were final";
    }
    // Σ over the 2 "ranks", then the mean: x back, exactly, padding included.
    for (int64_t i = 0; i < l.numel; ++i) ASSERT_EQ(g[i], float(i % 13 + step)) << i;
  }
}

TEST(GradBucketer, FinishReleasesWhatWasNeverReportedAndRethrowsTheThreadsError) {
  Layout l({500, 500, 500});
  std::vector<float> g(l.numel, 1.0f);
  std::vector<std::atomic<bool>> final(l.params.size());
  for (auto& f : final) f = true;
  RecordingComm comm(l, g.data(), final);
  GradBucketer b(comm, g.data(), l.numel, l.segments, l.ptrs, {1, true});
  EXPECT_THROW(b.finish(), Error);  // without begin()
  b.begin();
  b.ready(l.params[2]);
  b.finish();  // parameters 0 and 1 never reported: the backward is over, so they are final
  EXPECT_EQ(comm.calls.size(), 3u);
  for (float x : g) ASSERT_EQ(x, 1.0f);

  class Failing final : public Comm {
   public:
    int rank() const override { return 1; }
    int world_size() const override { return 2; }
    void allreduce_sum(float*, size_t) override {}
    void allreduce_grads(float*, size_t) override { fail(ErrorKind::Error, "rank 1: gradient all-reduce failed"); }
  } failing;
  GradBucketer f(failing, g.data(), l.numel, l.segments, l.ptrs, {1, true});
  for (int step = 0; step < 2; ++step) {  // and the next step starts clean
    f.begin();
    for (Param* p : l.ptrs) f.ready(*p);
    try {
      f.finish();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("rank 1: gradient all-reduce failed"), std::string::npos);
    }
  }
}

M2TConfig tiny(const GradSyncConfig& sync) {
  M2TConfig c;
  c.encoder = {"resnet18", 0.125, true};
  c.hidden_dim = 32;
  c.out_dim = 16;
  c.total_iterations = 10;
  c.seed = 3;
  c.threads = 1;
  c.optimizer.name = "sgd";
  c.grad_sync = sync;
  return c;
}

// k steps on `world` ranks (threads; sums through shared memory, or Gloo on loopback), rank r seeing its
// own batches; every rank's student parameters and gradients afterwards.
std::vector<std::vector<float>> train(int world, const GradSyncConfig& sync, int steps, bool shm = true) {
  const int port = free_port();
  std::vector<std::vector<float>> out(world);
  std::vector<std::string> errors(world);
  std::vector<std::thread> ranks;
  for (int r = 0; r < world; ++r)
    ranks.emplace_back([&, r] {
      try {
        GlooOptions o{r, world, "127.0.0.1", port, "", 30000ms};
        o.shm.enabled = shm;
        GlooComm comm(o);
        if (comm.transport() != std::string(shm ? "shm" : "tcp"))
          throw std::runtime_error(std::string("transport: ") + comm.transport() + " " + comm.why_not_shm());
        Momentum2Teacher m(cpu_backend(), tiny(sync), &comm);
        for (int k = 0; k < steps; ++k) {
          const std::string v = "r" + std::to_string(r) + "k" + std::to_string(k);
          m.step(test::gen(v + "a", {4, 16, 16, 3}), test::gen(v + "b", {4, 16, 16, 3}), 0.05);
        }
        const GradBucketer* b = m.grad_bucketer();
        // One bucket for the one pass, a dozen otherwise; overlapped, every one released by the model's
        // reports during the backward (none left for finish()).
        const size_t n = b ? b->buckets().size() : 0;
        if (!b || (sync.bucket_bytes <= 0 ? n != 1 : n < 8) || (sync.overlap && b->released_early() != int(n)))
          errors[r] = "buckets: " + std::to_string(b ? b->buckets().size() : 0) + ", released during the backward: " +
                      std::to_string(b ? b->released_early() : 0);
        for (const Param* p : m.student_params()) {
          out[r].insert(out[r].end(), p->value.data(), p->value.data() + p->value.numel());
          out[r].insert(out[r].end(), p->grad.data(), p->grad.data() + p->grad.numel());
        }
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  return out;
}

int64_t differing(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return -1;
  int64_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return d;
}

// The tiny model's arena is ~0.2 MB: 16 KB buckets make a dozen of them.
TEST(GradBucketer, TwoRanksOverlappedStepsEqualTheOnePassBlockingStepsBitwise) {
  const auto one_pass = train(2, {0, false}, 3);
  const auto overlapped = train(2, {16 << 10, true}, 3);
  ASSERT_EQ(one_pass.size(), 2u);
  ASSERT_FALSE(one_pass[0].empty());
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(differing(one_pass[r], overlapped[r]), 0) << "rank " << r;
    EXPECT_EQ(differing(overlapped[0], overlapped[r]), 0) << "rank " << r << " vs rank 0";
  }
}

// Shared memory and Gloo's ring add 2 ranks' values alike (a + b): whole steps end bitwise the same.
TEST(GradBucketer, TwoRanksStepsThroughSharedMemoryEqualStepsOverTcpBitwise) {
  const auto tcp = train(2, {16 << 10, true}, 2, false);
  const auto shm = train(2, {16 << 10, true}, 2, true);
  ASSERT_FALSE(tcp[0].empty());
  for (int r = 0; r < 2; ++r) EXPECT_EQ(differing(tcp[r], shm[r]), 0) << "rank " << r;
}

// Through shared memory every element is summed in rank order whatever the bucketing, so at 3 ranks too
// the one pass and the overlapped buckets agree bitwise (Gloo's ring order depends on the position).
TEST(GradBucketer, ThreeRanksSharedMemoryOnePassEqualsOverlappedBucketsBitwise) {
  const auto one_pass = train(3, {0, false}, 2);
  const auto overlapped = train(3, {16 << 10, true}, 2);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(differing(one_pass[r], overlapped[r]), 0) << "rank " << r;
    EXPECT_EQ(differing(overlapped[0], overlapped[r]), 0) << "rank " << r << " vs rank 0";
  }
}

TEST(GradBucketer, ThreeRanksOverlappedStepsEqualBlockingStepsOverTheSameBucketsBitwise) {
  const auto blocking = train(3, {16 << 10, false}, 2);
  const auto overlapped = train(3, {16 << 10, true}, 2);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(differing(blocking[r], overlapped[r]), 0) << "rank " << r;
    EXPECT_EQ(differing(overlapped[0], overlapped[r]), 0) << "rank " << r << " vs rank 0";
  }
}

}  // namespace
}  // namespace m2t

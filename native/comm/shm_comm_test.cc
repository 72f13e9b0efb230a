// The shared-memory sums of a group on one machine (comm/shm_comm.h, through GlooComm): bitwise Gloo's
// sums at 2 ranks, the rank-order sum on every rank at 3, any size (0, below the world size, across
// chunks and both slot sets), both channels at once; a peer that dies, leaves or hangs fails the wait
// naming it; a segment that cannot be reserved falls back to TCP with the reason.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <future>
#include <random>
#include <thread>

#include "comm/gloo_comm.h"
#include "comm/test_port.h"
#include "core/error.h"

using namespace std::chrono_literals;

namespace m2t {
namespace {

using test::free_port;
using test::message_of;

// Non-integer values of mixed magnitude: sums round, so the order of the additions shows in the bits.
std::vector<float> values(int seed, size_t n) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g) * std::pow(10.0f, float(int(g() % 7) - 3));
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Small chunks: the sizes below span several chunks, so both slot sets and the chunk tail are used.
GlooOptions options(int r, int world, int port, bool shm, std::chrono::milliseconds timeout = 20000ms) {
  GlooOptions o{r, world, "127.0.0.1", port, "", timeout};
  o.shm.enabled = shm;
  o.shm.grads_chunk = 64;
  o.shm.sum_chunk = 48;
  return o;
}

const std::vector<size_t> kSizes = {0, 1, 2, 15, 16, 17, 47, 48, 49, 200, 10007};

// Every size on both channels, on `world` thread ranks; out[r][size index][channel].
using Sums = std::vector<std::vector<std::vector<std::vector<float>>>>;
Sums sums(int world, bool shm, std::vector<std::string>* transports) {
  const int port = free_port();
  Sums out(world);
  std::vector<std::string> errors(world);
  std::vector<std::thread> ranks;
  transports->assign(world, "");
  for (int r = 0; r < world; ++r)
    ranks.emplace_back([&, r] {
      try {
        GlooComm c(options(r, world, port, shm));
        (*transports)[r] = c.transport();
        for (size_t i = 0; i < kSizes.size(); ++i) {
          std::vector<float> a = values(100 * r + int(i), kSizes[i]), b = values(100 * r + int(i) + 50, kSizes[i]);
          c.allreduce_sum(a.data(), a.size());
          c.allreduce_grads(b.data(), b.size());
          out[r].push_back({a, b});
        }
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
  return out;
}

TEST(ShmComm, TwoRanksSumBitwiseAsGlooOverTcp) {
  std::vector<std::string> shm_t, tcp_t;
  const Sums shm = sums(2, true, &shm_t), tcp = sums(2, false, &tcp_t);
  EXPECT_EQ(shm_t, (std::vector<std::string>{"shm", "shm"}));
  EXPECT_EQ(tcp_t, (std::vector<std::string>{"tcp", "tcp"}));
  ASSERT_EQ(shm[0].size(), kSizes.size());
  for (int r = 0; r < 2; ++r)
    for (size_t i = 0; i < kSizes.size(); ++i)
      for (int ch = 0; ch < 2; ++ch)
        EXPECT_TRUE(same_bits(shm[r][i][ch], tcp[r][i][ch])) << "rank " << r << ", " << kSizes[i] << " floats, channel " << ch;
}

TEST(ShmComm, ThreeRanksGetTheRankOrderSumOnEveryRank) {
  std::vector<std::string> t;
  const Sums shm = sums(3, true, &t);
  EXPECT_EQ(t, (std::vector<std::string>{"shm", "shm", "shm"}));
  ASSERT_EQ(shm[0].size(), kSizes.size());
  for (size_t i = 0; i < kSizes.size(); ++i) {
    // ((x0 + x1) + x2) per element, as the test computes it.
    std::vector<float> expect_a = values(int(i), kSizes[i]), expect_b = values(int(i) + 50, kSizes[i]);
    for (int r = 1; r < 3; ++r) {
      const auto a = values(100 * r + int(i), kSizes[i]), b = values(100 * r + int(i) + 50, kSizes[i]);
      for (size_t j = 0; j < kSizes[i]; ++j) expect_a[j] += a[j], expect_b[j] += b[j];
    }
    for (int r = 0; r < 3; ++r) {
      EXPECT_TRUE(same_bits(shm[r][i][0], expect_a)) << "rank " << r << ", " << kSizes[i] << " floats";
      EXPECT_TRUE(same_bits(shm[r][i][1], expect_b)) << "rank " << r << ", " << kSizes[i] << " floats, gradients";
    }
  }
}

// The bucketer's mean: the multiply fused into the sum's last pass gives the bits of sum-then-multiply.
TEST(ShmComm, TheScaledSumIsTheSumTimesTheScaleBitwise) {
  const int world = 3, port = free_port();
  std::vector<std::string> errors(world);
  std::vector<std::thread> ranks;
  for (int r = 0; r < world; ++r)
    ranks.emplace_back([&, r] {
      try {
        GlooComm c(options(r, world, port, true));
        for (size_t n : {size_t(1), size_t(47), size_t(10007)}) {
          std::vector<float> fused = values(7 * r + int(n), n), plain = fused;
          c.allreduce_grads_scaled(fused.data(), n, 1.0f / 3.0f);
          c.allreduce_grads(plain.data(), n);
          for (float& v : plain) v *= 1.0f / 3.0f;
          if (!same_bits(fused, plain)) errors[r] = "differs at " + std::to_string(n) + " floats";
        }
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

// The gradient channel (the step's communication thread) and the other channel (JS calls) at once.
TEST(ShmComm, TheTwoChannelsRunConcurrentlyWithoutInterfering) {
  const int world = 2, port = free_port(), reps = 40;
  std::vector<std::string> errors(2 * world);
  std::vector<std::thread> ranks;
  for (int r = 0; r < world; ++r)
    ranks.emplace_back([&, r] {
      try {
        GlooComm c(options(r, world, port, true));
        auto run = [&](bool grads, int slot) {
          for (int k = 0; k < reps; ++k) {
            std::vector<float> x(1000 + 37 * k, float(r + 1) * (grads ? 1.0f : 100.0f) + float(k));
            grads ? c.allreduce_grads(x.data(), x.size()) : c.allreduce_sum(x.data(), x.size());
            const float want = 3.0f * (grads ? 1.0f : 100.0f) + 2.0f * float(k);
            for (float v : x)
              if (v != want) {
                errors[slot] = "wrong sum on repetition " + std::to_string(k);
                return;
              }
          }
        };
        std::thread g([&] { run(true, 2 * r + 1); });
        run(false, 2 * r);
        g.join();
      } catch (const std::exception& e) {
        errors[2 * r] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (auto& e : errors) EXPECT_EQ(e, "");
}

TEST(ShmComm, RanksThatSumDifferentLengthsAllFailNamingIt) {
  const int port = free_port();
  std::vector<std::string> m(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      GlooComm c(options(r, 2, port, true));
      std::vector<float> x(100 + r);
      m[r] = message_of([&] { c.allreduce_grads(x.data(), x.size()); });
      c.barrier();
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < 2; ++r)
    EXPECT_NE(m[r].find("the ranks' sums differ in length: rank 0 100 floats, rank 1 101"), std::string::npos) << m[r];
}

// A peer process killed while rank 0 waits for it: the wait ends within a bound (not the 20 s timeout),
// naming the rank. The child is not reaped until the end, so rank 0 sees a zombie.
TEST(ShmComm, APeerProcessThatDiesFailsTheWaitingRankPromptly) {
  const int port = free_port();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      GlooComm c(options(1, 2, port, true));
      std::this_thread::sleep_for(300ms);  // rank 0 is waiting in its sum by now
      ::raise(SIGKILL);                     // with its side still open: no destructor runs
    } catch (...) {
    }
    ::raise(SIGKILL);
  }
  std::string m, transport;
  std::chrono::steady_clock::duration waited{};
  {
    GlooComm c0(options(0, 2, port, true));
    transport = c0.transport();
    std::vector<float> x(1000, 1.0f);
    const auto t0 = std::chrono::steady_clock::now();
    m = message_of([&] { c0.allreduce_grads(x.data(), x.size()); });
    waited = std::chrono::steady_clock::now() - t0;
    // Later calls fail at once (the group is broken).
    EXPECT_NE(message_of([&] { c0.allreduce_sum(x.data(), x.size()); }).find("failed earlier"), std::string::npos);
  }
  int st = 0;
  ::waitpid(child, &st, 0);
  EXPECT_EQ(transport, "shm");
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  EXPECT_LT(waited, 3s);
  EXPECT_NE(m.find("rank 0: gradient all-reduce of 1000 floats failed"), std::string::npos) << m;
  EXPECT_NE(m.find("rank 1 (pid " + std::to_string(child) + ") died"), std::string::npos) << m;
}

TEST(ShmComm, APeerThatLeavesFailsTheWaitingRankAtOnce) {
  const int port = free_port();
  std::promise<void> connected;
  auto peer = std::async(std::launch::async, [&] {
    GlooComm c(options(1, 2, port, true));
    connected.set_value();
  });  // rank 1 closes its side as c goes out of scope
  GlooComm c0(options(0, 2, port, true));
  connected.get_future().wait();
  peer.get();
  std::vector<float> x(1000, 1.0f);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string m = message_of([&] { c0.allreduce_sum(x.data(), x.size()); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_NE(m.find("rank 1 left the group"), std::string::npos) << m;
}

TEST(ShmComm, APeerThatHangsFailsWithinTheTimeoutNamingIt) {
  const int port = free_port();
  std::promise<void> connected, release;
  auto peer = std::async(std::launch::async, [&, f = release.get_future().share()] {
    GlooComm c(options(1, 2, port, true, 20000ms));
    connected.set_value();
    f.wait();  // alive and connected, but never joins the sum
  });
  GlooComm c0(options(0, 2, port, true, 800ms));
  connected.get_future().wait();
  std::vector<float> x(1000, 1.0f);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string m = message_of([&] { c0.allreduce_grads(x.data(), x.size()); });
  const auto waited = std::chrono::steady_clock::now() - t0;
  release.set_value();
  peer.get();
  EXPECT_GE(waited, 800ms);
  EXPECT_LT(waited, 3s);
  EXPECT_NE(m.find("rank 1 did not reach it within 800 ms"), std::string::npos) << m;
}

// A segment larger than /dev/shm: posix_fallocate fails, and the group sums over TCP instead.
TEST(ShmComm, ASegmentThatCannotBeReservedFallsBackToTcp) {
  const int port = free_port();
  std::vector<std::string> transport(2), why(2), errors(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      try {
        GlooOptions o = options(r, 2, port, true);
        o.shm.grads_chunk = size_t(1) << 40;  // 16 TiB of slots
        GlooComm c(o);
        transport[r] = c.transport();
        why[r] = c.why_not_shm();
        std::vector<float> x(1000, float(r + 1));
        c.allreduce_grads(x.data(), x.size());
        if (x != std::vector<float>(1000, 3.0f)) errors[r] = "wrong sum";
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : ranks) t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(errors[r], "");
    EXPECT_EQ(transport[r], "tcp");
    EXPECT_NE(why[r].find("rank 0 cannot reserve"), std::string::npos) << why[r];
    EXPECT_EQ(why[r], why[0]);
  }
}

TEST(ShmComm, ARankThatDeclinesKeepsTheGroupOnTcp) {
  const int port = free_port();
  std::vector<std::string> transport(2), why(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      GlooComm c(options(r, 2, port, r == 0));
      transport[r] = c.transport();
      why[r] = c.why_not_shm();
    });
  for (auto& t : ranks) t.join();
  EXPECT_EQ(transport, (std::vector<std::string>{"tcp", "tcp"}));
  EXPECT_EQ(why[0], "rank 1 disabled it (M2T_SHM=0)");
  EXPECT_EQ(why[1], why[0]);
}

}  // namespace
}  // namespace m2t

// The TCP store and Gloo all-reduce between ranks (threads of this process, over loopback TCP):
// sums equal the per-rank inputs added up, and every failure ends in an Error naming what and where.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <random>
#include <thread>

#include "comm/gloo_comm.h"
#include "comm/test_port.h"
#include "comm/tcp_store.h"
#include "core/error.h"

using namespace std::chrono_literals;

namespace m2t {
namespace {

using test::free_port;
using test::message_of;

TEST(TcpStore, SetGetWaitAcrossClients) {
  TcpStoreServer server("127.0.0.1", 0);
  TcpStore a("127.0.0.1", server.port(), 5s), b("127.0.0.1", server.port(), 5s);
  auto later = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(50ms);
    a.set("k", {'x', 'y'});
  });
  EXPECT_EQ(b.get("k"), (std::vector<char>{'x', 'y'}));  // waits for the set
  later.get();
  a.set("empty", {});
  EXPECT_TRUE(b.get("empty").empty());
}

TEST(TcpStore, TimeoutsNameTheAddressAndKey) {
  const int port = free_port();  // nothing listens there
  const auto t0 = std::chrono::steady_clock::now();
  const std::string m = message_of([&] { TcpStore s("127.0.0.1", port, 300ms); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_NE(m.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << m;

  TcpStoreServer server("127.0.0.1", 0);
  TcpStore s("127.0.0.1", server.port(), 300ms);
  const std::string w = message_of([&] { s.wait({"rank/1"}); });
  EXPECT_NE(w.find("'rank/1'"), std::string::npos) << w;
  EXPECT_NE(w.find("timed out"), std::string::npos) << w;
}

TEST(GlooComm, AllreduceSumsEveryRanksInput) {
  const int world = 3, n = 10007;  // not a multiple of any chunking
  const int port = free_port();
  std::vector<std::vector<float>> data(world), expect(1, std::vector<float>(n, 0.0f));
  for (int r = 0; r < world; ++r) {
    std::mt19937 g(r);
    std::uniform_int_distribution<int> d(-1000, 1000);  // integers: sums are exact in any order
    for (int i = 0; i < n; ++i) data[r].push_back(float(d(g)));
    for (int i = 0; i < n; ++i) expect[0][i] += data[r][i];
  }
  std::vector<std::thread> ranks;
  std::vector<std::string> errors(world);
  for (int r = 0; r < world; ++r) {
    ranks.emplace_back([&, r] {
      try {
        GlooComm c({r, world, "127.0.0.1", port, "", 20000ms});
        if (c.transport() != std::string("shm")) errors[r] = "ranks on one machine sum through TCP: " + c.why_not_shm();
        for (int rep = 0; rep < 3; ++rep) {  // repeated collectives reuse the pairs
          std::vector<float> x = data[r];
          c.allreduce_sum(x.data(), x.size());
          if (x != expect[0]) errors[r] = "wrong sum on repetition " + std::to_string(rep);
        }
        c.barrier();
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  for (int r = 0; r < world; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
}

TEST(GlooComm, APeerThatDiesFailsTheCollectiveInsteadOfHanging) {
  const int port = free_port();
  std::promise<void> connected, gone;
  auto peer = std::async(std::launch::async, [&] {
    GlooComm c({1, 2, "127.0.0.1", port, "", 20000ms});
    connected.set_value();
  });  // rank 1 closes its connections when c goes out of scope
  GlooComm c0({0, 2, "127.0.0.1", port, "", 5000ms});
  connected.get_future().wait();
  peer.get();
  std::vector<float> x(1000, 1.0f);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string m = message_of([&] { c0.allreduce_sum(x.data(), x.size()); });
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_NE(m.find("rank 0"), std::string::npos) << m;
  EXPECT_NE(m.find("all-reduce"), std::string::npos) << m;
}

TEST(GlooComm, APeerThatHangsFailsTheCollectiveWithinTheTimeout) {
  const int port = free_port();
  std::promise<void> connected, release;
  auto peer = std::async(std::launch::async, [&, f = release.get_future().share()] {
    GlooComm c({1, 2, "127.0.0.1", port, "", 20000ms});
    connected.set_value();
    f.wait();  // alive and connected, but never joins the collective
  });
  GlooComm c0({0, 2, "127.0.0.1", port, "", 1000ms});
  connected.get_future().wait();
  std::vector<float> x(1000, 1.0f);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string m = message_of([&] { c0.allreduce_sum(x.data(), x.size()); });
  const auto waited = std::chrono::steady_clock::now() - t0;
  release.set_value();
  peer.get();
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 5s);
  EXPECT_NE(m.find("all-reduce"), std::string::npos) << m;
}

TEST(GlooComm, BadRankOrWorldSizeIsARangeError) {
  EXPECT_NE(message_of([] { GlooComm c({2, 2, "127.0.0.1", 1, "", 100ms}); }).find("rank 2 is outside [0, 2)"),
            std::string::npos);
  EXPECT_NE(message_of([] { GlooComm c({0, 0, "127.0.0.1", 1, "", 100ms}); }).find("world size"), std::string::npos);
}

}  // namespace
}  // namespace m2t

// NcclComm on a device (ctest label "gpu"; skips without one). NCCL allows one rank per device, so the sum is
// checked at world size 1 (bitwise unchanged, on the comm's own stream), and the bounded waits with a group
// whose second rank never comes.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "comm/nccl_comm.h"
#include "cuda/testing.h"

namespace m2t {
namespace {

TEST(NcclComm, WorldOfOneSumsInPlace) {
  M2T_REQUIRE_CUDA_DEVICE();
  NcclComm c(0, 1, NcclComm::make_id(), 0);
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.world_size(), 1);
  std::vector<float> h(1 << 20);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<float>(i % 977) * 0.37f - 100.0f;
  cuda::testing::DeviceBuffer<float> d(h);
  c.allreduce_sum(d.get(), h.size());
  EXPECT_EQ(d.download(), h);
  c.allreduce_sum(d.get(), 0);  // nothing to do, no error
}

TEST(NcclComm, MissingRankTimesOutNamingTheRank) {
  M2T_REQUIRE_CUDA_DEVICE();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    NcclComm c(0, 2, NcclComm::make_id(), 0, /*timeout_ms=*/2000);
    FAIL() << "joined a group of 2 alone";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 of 2 could not join the group"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

TEST(NcclComm, BadRankIsARangeError) {
  M2T_REQUIRE_CUDA_DEVICE();
  EXPECT_THROW(NcclComm(2, 2, NcclComm::make_id(), 0), Error);
}

}  // namespace
}  // namespace m2t

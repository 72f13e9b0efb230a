// Link and load checks that need no device: the libraries cmake/cuda.cmake found are the ones the process loads.
#include <cublasLt.h>
#include <cudnn.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include "cuda/testing.h"

TEST(CudaLibs, VersionsLoad) {
  const size_t cudnn = cudnnGetVersion();
  EXPECT_GE(cudnn, 90000u) << "cuDNN 9 expected";
  EXPECT_EQ(cudnn / 10000, static_cast<size_t>(CUDNN_MAJOR)) << "headers and library disagree";
  EXPECT_GT(cublasLtGetVersion(), 0u);
  int nccl = 0;
  ASSERT_EQ(ncclGetVersion(&nccl), ncclSuccess);
  EXPECT_GT(nccl, 0);
  int rt = 0;
  ASSERT_EQ(cudaRuntimeGetVersion(&rt), cudaSuccess);
  EXPECT_GE(rt, 12000);
  std::printf("cuDNN %zu, cuBLASLt %zu, NCCL %d, CUDA runtime %d; %s\n", cudnn, cublasLtGetVersion(), nccl, rt,
              m2t::cuda::device_summary());
}

TEST(CudaLibs, DeviceCountIsSafeWithoutDriver) {
  // Must not throw or abort on a machine without a driver; the GPU tests rely on it to skip.
  const int n = m2t::cuda::device_count();
  EXPECT_GE(n, 0);
  EXPECT_EQ(n == 0, m2t::cuda::device_count() == 0);  // and stays consistent on a second call
}

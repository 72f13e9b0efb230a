#include <cstdio>
#include <string>

#include "cuda/check.h"

namespace m2t::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" status so later calls report their own errors
    return 0;
  }
  return n;
}

const char* device_summary() {
  static std::string s;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    s = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    return s.c_str();
  }
  s = std::to_string(n) + " CUDA device(s)";
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) == cudaSuccess)
      s += std::string("; ") + std::to_string(i) + ": " + p.name + " sm_" + std::to_string(p.major) +
           std::to_string(p.minor) + ", " + std::to_string(p.totalGlobalMem >> 20) + " MiB";
  }
  return s.c_str();
}

}  // namespace m2t::cuda

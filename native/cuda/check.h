// CUDA error checks for the launchers and the device helpers. Failures throw m2t::Error (the binding turns it
// into a JS Error) with the call, the file:line and CUDA's message; nothing aborts the process.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

#define M2T_CUDA_CHECK(expr)                                                                              \
  do {                                                                                                    \
    const cudaError_t m2t_cuda_err_ = (expr);                                                             \
    if (m2t_cuda_err_ != cudaSuccess)                                                                     \
      ::m2t::fail(::m2t::ErrorKind::Error, "CUDA error in ", #expr, " (", __FILE__, ":", __LINE__, "): ", \
                  cudaGetErrorString(m2t_cuda_err_));                                                     \
  } while (0)

// After a kernel launch: configuration errors (grid too large, no kernel image for this card) surface here.
#define M2T_CUDA_LAUNCH_CHECK() M2T_CUDA_CHECK(cudaGetLastError())

namespace m2t::cuda {

// Number of usable CUDA devices; 0 (never an exception) when there is no driver or no device.
int device_count();

// One line naming why there is no device ("no CUDA driver", "no device", ...) or the devices found.
const char* device_summary();

}  // namespace m2t::cuda

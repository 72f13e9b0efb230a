// Pooling on CUDA, NHWC, as pool_cpu.cc: max pool 3×3 / stride 2 / pad 1 (the ResNet stem) with argmax indices,
// and global average pool to [N, C]. T is float or __nv_bfloat16. Backward passes gather (each input element
// sums the outputs that point at it, in a fixed order): no atomics, bit-reproducible.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace m2t::cuda {

inline int64_t maxpool_out(int64_t in) { return (in + 2 - 3) / 2 + 1; }

// y [N, Ho, Wo, C], idx: the flat x index each output took (the first maximum wins, as in PyTorch).
template <typename T>
void maxpool_forward(const T* x, T* y, int32_t* idx, int64_t N, int64_t H, int64_t W, int64_t C,
                     cudaStream_t stream);
// dx [N, H, W, C] = Σ of dy over the outputs whose idx is that element (zero where none).
template <typename T>
void maxpool_backward(const T* dy, const int32_t* idx, T* dx, int64_t N, int64_t H, int64_t W, int64_t C,
                      cudaStream_t stream);

// y[n, c] = (Σ over h, w of x[n, h, w, c]) / (H·W), summed in float in pixel order as the CPU does.
template <typename T>
void avgpool_forward(const T* x, T* y, int64_t N, int64_t HW, int64_t C, cudaStream_t stream);
// dx[n, p, c] = dy[n, c] / (H·W).
template <typename T>
void avgpool_backward(const T* dy, T* dx, int64_t N, int64_t HW, int64_t C, cudaStream_t stream);

}  // namespace m2t::cuda

// L2 normalisation and the Momentum² Teacher loss on CUDA (fp32 rows [N, D]), as loss_cpu.cc computes them.
// One block per row; every reduction is a fixed-order block tree in double (no atomics: bit-reproducible).
// The loss stays on the device (no host sync): the step reads it back when it logs.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace m2t::cuda {

// y = x / max(‖x‖, 1e-12) per row; norms[n] = ‖x_n‖. y may alias x.
void l2_normalize(const float* x, float* y, float* norms, int64_t N, int64_t D, cudaStream_t stream);

// dx = (dy − y·⟨dy, y⟩)/‖x‖ per row (dx = dy/1e-12 where ‖x‖ ≤ 1e-12). dx must not alias y.
void l2_normalize_backward(const float* y, const float* norms, const float* dy, float* dx, int64_t N, int64_t D,
                           cudaStream_t stream);

// Fused student side of the loss (spec §3.4): q = l2_normalize(p) (written to q), k = [k1; k2] already normalised,
// rows b of q paired with rows b of k, B = N/2:
//   loss = 4 − 2·Σ_rows ⟨q, k⟩ / B        (one float on the device)
//   dp   = l2_normalize_backward(q, ‖p‖, −2k/B)   (the gradient w.r.t. the raw predictor output p)
// row_dots: N doubles of workspace. 2 launches.
void m2t_loss_fused(const float* p, const float* k, float* q, float* dp, float* loss, double* row_dots, int64_t N,
                    int64_t D, cudaStream_t stream);

}  // namespace m2t::cuda

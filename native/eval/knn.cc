#include "eval/knn.h"

#include <dnnl.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace m2t::eval {
namespace {

// C[M, N] = A[M, K] · B[N, K]ᵀ (row-major), through oneDNN's sgemm as the rest of the CPU code.
void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C, int64_t ldc) {
  const dnnl_status_t st = dnnl_sgemm('N', 'T', M, N, K, 1.0f, A, K, B, K, 0.0f, C, ldc);
  M2T_CHECK(st == dnnl_success, "knn: sgemm failed with status ", static_cast<int>(st));
}

// 1 / max(|x_i|, 1e-12) per row.
std::vector<float> inverse_norms(const float* x, int64_t n, int64_t d) {
  std::vector<float> inv(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(x[i * d + j]) * x[i * d + j];
    inv[size_t(i)] = static_cast<float>(1.0 / std::max(std::sqrt(s), 1e-12));
  }
  return inv;
}

// Strict order of neighbours: more similar first, then the lower memory index (ties are deterministic).
inline bool better(const Neighbour& a, const Neighbour& b) {
  return a.sim > b.sim || (a.sim == b.sim && a.index < b.index);
}

void check(const float* memory, int64_t n, const float* queries, int64_t m, int64_t d, int64_t k, int64_t block_bytes) {
  if (n < 1) fail(ErrorKind::RangeError, "knn: the memory bank is empty");
  if (m < 0) fail(ErrorKind::RangeError, "knn: negative query count ", m);
  if (d < 1) fail(ErrorKind::RangeError, "knn: feature dimension must be >= 1, got ", d);
  if (k < 1) fail(ErrorKind::RangeError, "knn: k must be >= 1, got ", k);
  if (block_bytes < 4) fail(ErrorKind::RangeError, "knn: blockBytes must be >= 4, got ", block_bytes);
  if (!memory || (m > 0 && !queries)) fail(ErrorKind::TypeError, "knn: missing features");
}

// Runs the tiled search; calls on_block(q0, rows, kk, heaps) once per query block with each query's
// kk best neighbours (heap order, not sorted) at heaps[r·kk … r·kk + kk).
template <typename F>
void search(const float* memory, int64_t n, const float* queries, int64_t m, int64_t d, int64_t k, int64_t block_bytes,
            F&& on_block) {
  const int64_t kk = std::min(k, n);
  const KnnTile t = knn_tile(m, n, kk, block_bytes);
  const std::vector<float> inv_m = inverse_norms(memory, n, d);
  std::vector<float> tile(static_cast<size_t>(t.rows * t.cols));
  std::vector<Neighbour> heaps(static_cast<size_t>(t.rows * kk));
  std::vector<int64_t> fill(static_cast<size_t>(t.rows));
  for (int64_t q0 = 0; q0 < m; q0 += t.rows) {
    const int64_t rows = std::min(t.rows, m - q0);
    const std::vector<float> inv_q = inverse_norms(queries + q0 * d, rows, d);
    std::fill(fill.begin(), fill.end(), 0);
    for (int64_t c0 = 0; c0 < n; c0 += t.cols) {
      const int64_t cols = std::min(t.cols, n - c0);
      gemm_nt(rows, cols, d, queries + q0 * d, memory + c0 * d, tile.data(), cols);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        Neighbour* h = heaps.data() + r * kk;
        int64_t& cnt = fill[size_t(r)];
        const float* s = tile.data() + r * cols;
        const float iq = inv_q[size_t(r)];
        for (int64_t c = 0; c < cols; ++c) {
          const Neighbour cand{s[c] * iq * inv_m[size_t(c0 + c)], c0 + c};
          if (cnt < kk) {
            h[cnt++] = cand;
            std::push_heap(h, h + cnt, better);  // front = the worst kept
          } else if (better(cand, h[0])) {
            std::pop_heap(h, h + kk, better);
            h[kk - 1] = cand;
            std::push_heap(h, h + kk, better);
          }
        }
      }
    }
    on_block(q0, rows, kk, heaps.data());
  }
}

}  // namespace

KnnTile knn_tile(int64_t m, int64_t n, int64_t k, int64_t block_bytes) {
  const int64_t floats = std::max<int64_t>(1, block_bytes / 4);
  int64_t rows = std::max<int64_t>(1, std::min<int64_t>(m, 256));
  int64_t cols = std::clamp<int64_t>(floats / rows, 1, n);
  // A small bank fits whole: take more queries per tile instead.
  if (cols == n) rows = std::max<int64_t>(1, std::min<int64_t>(m, std::min<int64_t>(4096, floats / n)));
  rows = std::max<int64_t>(1, std::min(rows, floats / cols));
  return {rows, cols};
}

std::vector<Neighbour> knn_neighbours(const float* memory, int64_t n, const float* queries, int64_t m, int64_t d,
                                      int64_t k, int64_t block_bytes) {
  check(memory, n, queries, m, d, k, block_bytes);
  const int64_t kk = std::min(k, n);
  std::vector<Neighbour> out(static_cast<size_t>(m * kk));
  search(memory, n, queries, m, d, k, block_bytes, [&](int64_t q0, int64_t rows, int64_t kk_, Neighbour* heaps) {
    for (int64_t r = 0; r < rows; ++r) {
      Neighbour* h = heaps + r * kk_;
      std::sort(h, h + kk_, better);
      std::copy(h, h + kk_, out.begin() + (q0 + r) * kk_);
    }
  });
  return out;
}

std::vector<int32_t> knn_predict(const float* memory, const int32_t* labels, int64_t n, const float* queries,
                                 int64_t m, int64_t d, const KnnOptions& o) {
  check(memory, n, queries, m, d, o.k, o.block_bytes);
  if (o.classes < 1) fail(ErrorKind::RangeError, "knn: classes must be >= 1, got ", o.classes);
  if (!(o.temperature > 0) || !std::isfinite(o.temperature))
    fail(ErrorKind::RangeError, "knn: temperature must be > 0, got ", o.temperature);
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= o.classes)
      fail(ErrorKind::RangeError, "knn: memory label ", labels[i], " at ", i, " is not in [0, ", o.classes, ")");
  std::vector<int32_t> pred(static_cast<size_t>(m));
  const double inv_t = 1.0 / o.temperature;
  search(memory, n, queries, m, d, o.k, o.block_bytes, [&](int64_t q0, int64_t rows, int64_t kk, Neighbour* heaps) {
#pragma omp parallel
    {
      std::vector<double> votes(static_cast<size_t>(o.classes));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        std::fill(votes.begin(), votes.end(), 0.0);
        const Neighbour* h = heaps + r * kk;
        // exp((s − 1)/T) instead of exp(s/T): the same argmax, never overflows (s ≤ 1).
        for (int64_t j = 0; j < kk; ++j) votes[size_t(labels[h[j].index])] += std::exp((double(h[j].sim) - 1.0) * inv_t);
        pred[size_t(q0 + r)] = int32_t(std::max_element(votes.begin(), votes.end()) - votes.begin());
      }
    }
  });
  return pred;
}

}  // namespace m2t::eval

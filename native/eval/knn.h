// Weighted k-nearest-neighbour classification on frozen features (InstDisc / solo-learn style):
// cosine similarity s = <q, m> / (|q| |m|), the k most similar memory rows vote for their class
// with weight exp(s / T), the class with the largest sum wins.
//
// Memory bound: similarities are computed one [query block × memory block] tile at a time (one
// sgemm per tile on the raw features, rescaled by inverse norms), so the working set beyond the
// caller's features is the tile (≤ block_bytes), the inverse norms (4 B per row) and a top-k list
// per query of the block (12 B per entry). Nothing else scales with the memory bank.
#pragma once
#include <cstdint>
#include <vector>

namespace m2t::eval {

struct KnnOptions {
  int64_t k = 200;
  double temperature = 0.07;
  int32_t classes = 0;                  // labels are in [0, classes)
  int64_t block_bytes = int64_t(32) << 20;  // bound on the similarity tile
};

// The tile shape knn_predict uses for m queries against n memory rows: [rows, cols] with
// rows·cols·4 ≤ block_bytes (at least one full row of 1 × min(n, …) columns).
struct KnnTile {
  int64_t rows, cols;
};
KnnTile knn_tile(int64_t m, int64_t n, int64_t k, int64_t block_bytes);

// Predicted class of each of the m queries ([m, d] row-major) given the memory bank [n, d] and its
// labels [n]. k is clipped to n. Throws m2t::Error (RangeError) on bad arguments or labels.
std::vector<int32_t> knn_predict(const float* memory, const int32_t* labels, int64_t n, const float* queries,
                                 int64_t m, int64_t d, const KnnOptions& o);

// The top-k (similarity, memory index) of each query, most similar first — what the vote uses;
// exposed for tests. Returns m·k' pairs (k' = min(k, n)) row by row.
struct Neighbour {
  float sim;
  int64_t index;
};
std::vector<Neighbour> knn_neighbours(const float* memory, int64_t n, const float* queries, int64_t m, int64_t d,
                                      int64_t k, int64_t block_bytes);

}  // namespace m2t::eval

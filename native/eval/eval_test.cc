// The frozen-feature classifiers against straightforward references: brute-force cosine
// neighbours in double precision, the weighted vote by hand, finite differences of the
// logistic-regression loss, and separable data it must fit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "core/error.h"
#include "eval/knn.h"
#include "eval/logreg.h"

namespace m2t::eval {
namespace {

std::vector<float> randn(int64_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(g);
  return v;
}

// Brute force: every similarity in double, sorted (similarity desc, index asc).
std::vector<std::pair<double, int64_t>> brute(const std::vector<float>& mem, int64_t n, const float* q, int64_t d) {
  std::vector<std::pair<double, int64_t>> s;
  double nq = 0;
  for (int64_t j = 0; j < d; ++j) nq += double(q[j]) * q[j];
  for (int64_t i = 0; i < n; ++i) {
    double dot = 0, nm = 0;
    for (int64_t j = 0; j < d; ++j) {
      dot += double(mem[size_t(i * d + j)]) * q[j];
      nm += double(mem[size_t(i * d + j)]) * mem[size_t(i * d + j)];
    }
    s.push_back({dot / std::sqrt(nq * nm), i});
  }
  std::sort(s.begin(), s.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  return s;
}

TEST(Knn, NeighboursMatchBruteForceAcrossTiles) {
  const int64_t n = 300, m = 37, d = 24, k = 25;
  const auto mem = randn(n * d, 1), q = randn(m * d, 2);
  // Tiles of a few hundred floats: many query blocks and many memory blocks per query.
  for (int64_t bytes : {int64_t(4 * 7 * 13), int64_t(4 * 1000), int64_t(256) << 20}) {
    const auto nb = knn_neighbours(mem.data(), n, q.data(), m, d, k, bytes);
    ASSERT_EQ(nb.size(), size_t(m * k));
    for (int64_t t = 0; t < m; ++t) {
      const auto ref = brute(mem, n, q.data() + t * d, d);
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_EQ(nb[size_t(t * k + j)].index, ref[size_t(j)].second) << "query " << t << " rank " << j << " bytes " << bytes;
        EXPECT_NEAR(nb[size_t(t * k + j)].sim, ref[size_t(j)].first, 1e-5);
      }
    }
  }
}

TEST(Knn, TileRespectsTheBound) {
  for (int64_t bytes : {int64_t(4), int64_t(400), int64_t(1) << 20, int64_t(256) << 20})
    for (int64_t n : {int64_t(1), int64_t(50), int64_t(1281167)})
      for (int64_t m : {int64_t(1), int64_t(10000), int64_t(50000)}) {
        const KnnTile t = knn_tile(m, n, 200, bytes);
        EXPECT_GE(t.rows, 1);
        EXPECT_GE(t.cols, 1);
        EXPECT_LE(t.cols, n);
        EXPECT_LE(t.rows, m);
        EXPECT_LE(t.rows * t.cols * 4, std::max<int64_t>(bytes, 4)) << bytes << " " << n << " " << m;
      }
}

TEST(Knn, WeightedVoteByHand) {
  // 2-D memory: three points of class 0 near (1, 0), two of class 1 at exactly (0, 1).
  const std::vector<float> mem = {1, 0, 0.9f, 0.1f, 1, -0.05f, 0, 1, 0, 2};
  const std::vector<int32_t> lab = {0, 0, 0, 1, 1};
  // A query at 45°: cos = 0.7071 to class 1 (twice); to class 0 about 0.707, 0.776, 0.672.
  const std::vector<float> q = {1, 1};
  KnnOptions o;
  o.classes = 2;
  o.k = 5;
  o.temperature = 0.07;
  auto vote = [&](double t, int64_t k) {
    // By hand: Σ exp(s/T) per class over the k nearest.
    const auto ref = brute(mem, 5, q.data(), 2);
    double v[2] = {0, 0};
    for (int64_t j = 0; j < k; ++j) v[lab[size_t(ref[size_t(j)].second)]] += std::exp(ref[size_t(j)].first / t);
    return v[1] > v[0] ? 1 : 0;
  };
  for (double t : {0.01, 0.07, 1.0})
    for (int64_t k : {1, 2, 3, 4, 5}) {
      o.temperature = t;
      o.k = k;
      EXPECT_EQ(knn_predict(mem.data(), lab.data(), 5, q.data(), 1, 2, o)[0], vote(t, k)) << t << " " << k;
    }
  // k = 1 picks the single nearest (0.9, 0.1): class 0; k = 5 at T = 1: 3 votes of class 0 beat 2.
  o.k = 1;
  EXPECT_EQ(knn_predict(mem.data(), lab.data(), 5, q.data(), 1, 2, o)[0], 0);
}

TEST(Knn, RandomDataMatchesReferenceVote) {
  const int64_t n = 500, m = 200, d = 16, k = 200, C = 7;
  const auto mem = randn(n * d, 5), q = randn(m * d, 6);
  std::vector<int32_t> lab(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) lab[size_t(i)] = int32_t((i * 31) % C);
  KnnOptions o;
  o.classes = C;
  o.k = k;
  o.block_bytes = 4 * 64 * 100;
  const auto pred = knn_predict(mem.data(), lab.data(), n, q.data(), m, d, o);
  for (int64_t t = 0; t < m; ++t) {
    const auto ref = brute(mem, n, q.data() + t * d, d);
    std::vector<double> v(size_t(C), 0.0);
    for (int64_t j = 0; j < k; ++j) v[size_t(lab[size_t(ref[size_t(j)].second)])] += std::exp(ref[size_t(j)].first / 0.07);
    EXPECT_EQ(pred[size_t(t)], int32_t(std::max_element(v.begin(), v.end()) - v.begin())) << "query " << t;
  }
}

TEST(Knn, BadInputIsARangeError) {
  const std::vector<float> mem = {1, 0, 0, 1}, q = {1, 0};
  const std::vector<int32_t> lab = {0, 3};
  KnnOptions o;
  o.classes = 2;
  try {
    knn_predict(mem.data(), lab.data(), 2, q.data(), 1, 2, o);
    FAIL() << "expected an error";
  } catch (const m2t::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::RangeError);
    EXPECT_NE(std::string(e.what()).find("label 3 at 1"), std::string::npos) << e.what();
  }
  o.temperature = 0;
  const std::vector<int32_t> ok = {0, 1};
  EXPECT_THROW(knn_predict(mem.data(), ok.data(), 2, q.data(), 1, 2, o), m2t::Error);
  EXPECT_THROW(knn_neighbours(mem.data(), 0, q.data(), 1, 2, 5, 1024), m2t::Error);
}

TEST(Logreg, GradientMatchesFiniteDifferences) {
  const int64_t n = 40, d = 5;
  const int32_t C = 3;
  const auto x = randn(n * d, 11), wv = randn(C * d + C, 12);
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[size_t(i)] = int32_t(i % C);
  LogregModel m;
  m.d = d;
  m.classes = C;
  m.mean.assign(size_t(d), 0.1f);
  m.inv_sd.assign(size_t(d), 0.8f);
  m.w.assign(wv.begin(), wv.begin() + C * d);
  m.b.assign(wv.begin() + C * d, wv.end());
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n; i += 2) rows.push_back(i);
  std::vector<float> gw, gb;
  logreg_loss(m, x.data(), y.data(), rows, &gw, &gb);
  const float eps = 1e-2f;
  auto fd = [&](std::vector<float>& p, size_t k) {
    const float keep = p[k];
    p[k] = keep + eps;
    const double up = logreg_loss(m, x.data(), y.data(), rows, nullptr, nullptr);
    p[k] = keep - eps;
    const double dn = logreg_loss(m, x.data(), y.data(), rows, nullptr, nullptr);
    p[k] = keep;
    return (up - dn) / (2 * eps);
  };
  for (size_t k = 0; k < m.w.size(); ++k) EXPECT_NEAR(gw[k], fd(m.w, k), 2e-4) << "w " << k;
  for (size_t k = 0; k < m.b.size(); ++k) EXPECT_NEAR(gb[k], fd(m.b, k), 2e-4) << "b " << k;
}

TEST(Logreg, FitsSeparableDataAndStandardises) {
  // Four classes on a badly scaled, offset axis pair: class = quadrant of (x0 − 100, (x1 − 5)·1000).
  const int64_t n = 2000, d = 3;
  std::mt19937 g(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(static_cast<size_t>(n * d));
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float a = u(g), b = u(g);
    if (std::fabs(a) < 0.1f) a = a < 0 ? -0.1f : 0.1f;  // a margin around the boundaries
    if (std::fabs(b) < 0.1f) b = b < 0 ? -0.1f : 0.1f;
    x[size_t(i * d)] = 100 + a;
    x[size_t(i * d + 1)] = 5 + b / 1000;
    x[size_t(i * d + 2)] = u(g);  // noise
    y[size_t(i)] = (a > 0 ? 1 : 0) + (b > 0 ? 2 : 0);
  }
  LogregOptions o;
  o.classes = 4;
  o.epochs = 10;
  const LogregModel m = logreg_fit(x.data(), y.data(), n, d, o);
  EXPECT_NEAR(m.mean[0], 100.0f, 0.05f);
  EXPECT_NEAR(1.0f / m.inv_sd[1], 0.001f * std::sqrt(1.0f / 3) * 1.0f, 1e-4f);  // sd of U(−1, 1)/1000 (margin ignored)
  const auto pred = logreg_predict(m, x.data(), n);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) correct += pred[size_t(i)] == y[size_t(i)];
  EXPECT_EQ(correct, n);
  // Deterministic for a seed; another seed gives another shuffle (other weights).
  const LogregModel m2 = logreg_fit(x.data(), y.data(), n, d, o);
  EXPECT_EQ(m.w, m2.w);
  o.seed = 1;
  EXPECT_NE(logreg_fit(x.data(), y.data(), n, d, o).w, m.w);
  // The mean loss after fitting is small.
  std::vector<int64_t> all(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) all[size_t(i)] = i;
  EXPECT_LT(logreg_loss(m, x.data(), y.data(), all, nullptr, nullptr), 0.2);
}

TEST(Logreg, BadInputIsARangeError) {
  const std::vector<float> x = {0, 1, 2, 3};
  const std::vector<int32_t> y = {0, 5};
  LogregOptions o;
  o.classes = 2;
  EXPECT_THROW(logreg_fit(x.data(), y.data(), 2, 2, o), m2t::Error);
  o.classes = 1;
  const std::vector<int32_t> ok = {0, 0};
  EXPECT_THROW(logreg_fit(x.data(), ok.data(), 2, 2, o), m2t::Error);
}

}  // namespace
}  // namespace m2t::eval

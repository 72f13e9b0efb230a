// Multinomial logistic regression on frozen features — the linear probe of the post-training
// evaluation. Features are standardised with the training set's mean and standard deviation
// (sd = sqrt(var + 1e-8)); then z = W·x̂ + b, softmax cross-entropy, minibatch SGD with momentum
// (v = μ·v + ∇ + λ·θ, θ −= lr·v, λ on W and b), a cosine learning rate from lr to 0 over all steps,
// a seeded shuffle every epoch. The features themselves are never copied: each minibatch is
// gathered and standardised into a [batch, d] buffer and goes through two sgemm calls.
#pragma once
#include <cstdint>
#include <vector>

namespace m2t::eval {

struct LogregOptions {
  int32_t classes = 0;
  int64_t epochs = 5;
  int64_t batch = 256;
  double lr = 0.5;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  uint64_t seed = 0;
};

struct LogregModel {
  int64_t d = 0;
  int32_t classes = 0;
  std::vector<float> mean, inv_sd;  // [d]: x̂ = (x − mean) · inv_sd
  std::vector<float> w;             // [classes, d]
  std::vector<float> b;             // [classes]
};

// Mean cross-entropy of the rows `rows` of standardised x̂ under (w, b), and its gradient with
// respect to w and b (sized like them) — the quantity fit() descends; exposed for gradient checks.
double logreg_loss(const LogregModel& m, const float* x, const int32_t* y, const std::vector<int64_t>& rows,
                   std::vector<float>* grad_w, std::vector<float>* grad_b);

// Trains on x [n, d] with labels y [n] in [0, classes). Throws m2t::Error (RangeError) on bad input.
LogregModel logreg_fit(const float* x, const int32_t* y, int64_t n, int64_t d, const LogregOptions& o);

// argmax_c z_c of each row of x [m, d] (ties: the lower class).
std::vector<int32_t> logreg_predict(const LogregModel& model, const float* x, int64_t m);

}  // namespace m2t::eval

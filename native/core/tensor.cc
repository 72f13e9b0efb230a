#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "core/error.h"

namespace m2t {

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

static std::shared_ptr<float> alloc_floats(int64_t n) {
  size_t bytes = ((static_cast<size_t>(n) * sizeof(float) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes ? bytes : 64);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
}

Tensor::Tensor(Shape shape, Device dev) : shape_(std::move(shape)), device_(dev) {
  numel_ = numel_of(shape_);
  capacity_ = numel_;
  data_ = alloc_floats(numel_);
}

void Tensor::resize(const Shape& shape) {
  int64_t n = numel_of(shape);
  if (n > capacity_ || !data_) {
    data_ = alloc_floats(n);
    capacity_ = n;
  }
  shape_ = shape;
  numel_ = n;
}

void Tensor::zero() {
  if (numel_) std::memset(data_.get(), 0, numel_ * sizeof(float));
}

void Tensor::copy_from(const Tensor& other) {
  M2T_CHECK(other.numel_ == numel_, "tensor copy: ", shape_str(other.shape_), " into ", shape_str(shape_));
  if (numel_) std::memcpy(data_.get(), other.data_.get(), numel_ * sizeof(float));
}

void Tensor::copy_from_resized(const Tensor& other) {
  resize(other.shape_);
  copy_from(other);
}

Tensor Tensor::clone() const {
  Tensor t(shape_, device_);
  t.copy_from(*this);
  return t;
}

}  // namespace m2t

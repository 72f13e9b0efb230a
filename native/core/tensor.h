// A dense float32 tensor: shape + an owned, 64-byte-aligned buffer.
// Activations are NHWC ([N, H, W, C], C fastest); conv weights OIHW as in PyTorch;
// linear weights [out, in]. The device tag is the seam for the CUDA backend.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace m2t {

enum class Device { CPU, CUDA };

using Shape = std::vector<int64_t>;

int64_t numel_of(const Shape& s);
std::string shape_str(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape, Device dev = Device::CPU);  // zero-filled

  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t ndim() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  bool empty() const { return numel_ == 0; }
  Device device() const { return device_; }

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }

  // Reallocates only when the element count grows; contents are unspecified afterwards.
  void resize(const Shape& shape);
  void zero();
  void copy_from(const Tensor& other);  // same numel required
  void copy_from_resized(const Tensor& other);  // takes other's shape
  Tensor clone() const;

 private:
  Shape shape_;
  int64_t numel_ = 0;
  int64_t capacity_ = 0;
  Device device_ = Device::CPU;
  std::shared_ptr<float> data_;
};

}  // namespace m2t

#include "core/tensor.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "core/allocator.h"
#include "core/backend.h"
#include "core/error.h"

namespace m2t {

std::string Device::str() const { return kind == DeviceKind::CPU ? "cpu" : "cuda:" + std::to_string(index); }

Device parse_device(const std::string& s, const char* what) {
  if (s == "cpu") return Device::cpu();
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 9 &&
      std::all_of(s.begin() + 5, s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    const int i = std::stoi(s.substr(5));
    if (i <= 1023) return Device::cuda(i);
  }
  fail(ErrorKind::RangeError, what, ": expected 'cpu' or 'cuda:N', got '", s, "'");
}

size_t dtype_size(DType t) { return t == DType::BF16 ? 2 : 4; }
const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
  }
  return "?";
}

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

// A zeroed block of n elements from the device's allocator, freed back to it.
void Tensor::allocate(int64_t n) {
  Backend& be = backend_for(device_);
  Allocator* a = &be.allocator();
  const size_t bytes = static_cast<size_t>(n) * dtype_size(dtype_);
  void* p = a->allocate(bytes);
  storage_ = std::shared_ptr<void>(p, [a](void* q) { a->deallocate(q); });
  ptr_ = p;
  capacity_ = n;
  if (device_.is_cpu()) {
    if (bytes) std::memset(p, 0, bytes);
  } else {
    numel_ = n;
    be.fill_zero(*this);
  }
}

Tensor::Tensor(Shape shape, Device dev, DType dtype) : shape_(std::move(shape)), device_(dev), dtype_(dtype) {
  numel_ = numel_of(shape_);
  allocate(numel_);
}

Tensor Tensor::wrap_host(std::shared_ptr<void> owner, float* data, Shape shape) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = t.capacity_ = numel_of(t.shape_);
  t.storage_ = std::move(owner);
  t.ptr_ = data;
  return t;
}

void Tensor::resize(const Shape& shape) {
  int64_t n = numel_of(shape);
  if (n > capacity_ || !storage_) allocate(n);
  shape_ = shape;
  numel_ = n;
}

void Tensor::resize_as(const Shape& shape, DType dtype, const char* what) {
  if (dtype_ != dtype) {
    M2T_CHECK(!storage_, what, ": output is ", dtype_name(dtype_), ", expected ", dtype_name(dtype));
    dtype_ = dtype;
  }
  resize(shape);
}

void Tensor::zero() {
  if (!numel_) return;
  if (device_.is_cpu())
    std::memset(ptr_, 0, nbytes());
  else
    backend_for(device_).fill_zero(*this);
}

void Tensor::fill(float v) {
  M2T_CHECK(dtype_ == DType::F32, "tensor fill: ", dtype_name(dtype_), " tensor");
  if (device_.is_cpu())
    std::fill(data(), data() + numel_, v);
  else
    backend_for(device_).fill(*this, v);
}

void Tensor::copy_from(const Tensor& other) {
  M2T_CHECK(other.numel_ == numel_, "tensor copy: ", shape_str(other.shape_), " into ", shape_str(shape_));
  M2T_CHECK(other.dtype_ == dtype_, "tensor copy: ", dtype_name(other.dtype_), " into ", dtype_name(dtype_));
  if (!numel_) return;
  if (device_.is_cpu() && other.device_.is_cpu())
    std::memcpy(ptr_, other.ptr_, nbytes());
  else
    backend_for(device_.is_cpu() ? other.device_ : device_).copy(*this, other);
}

void Tensor::copy_from_resized(const Tensor& other) {
  resize(other.shape_);
  copy_from(other);
}

Tensor Tensor::clone() const {
  Tensor t(shape_, device_, dtype_);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device_) return *this;
  Tensor t(shape_, dev, dtype_);
  t.copy_from(*this);
  return t;
}

void Tensor::host_in(const void* src, DType want) {
  M2T_CHECK(dtype_ == want, "copy_from_host: ", dtype_name(want), " values into a ", dtype_name(dtype_), " tensor");
  if (!numel_) return;
  if (device_.is_cpu()) {
    std::memcpy(ptr_, src, nbytes());
    return;
  }
  Tensor host(shape_, Device::cpu(), dtype_);
  std::memcpy(host.ptr_, src, nbytes());
  copy_from(host);
}

void Tensor::host_out(void* dst, DType want) const {
  M2T_CHECK(dtype_ == want, "copy_to_host: a ", dtype_name(dtype_), " tensor into ", dtype_name(want), " values");
  if (!numel_) return;
  if (device_.is_cpu()) {
    std::memcpy(dst, ptr_, nbytes());
    return;
  }
  Tensor host = to(Device::cpu());
  std::memcpy(dst, host.ptr_, nbytes());
}

Tensor Tensor::view(int64_t offset, const Shape& shape, DType dtype) const {
  const int64_t bytes = numel_of(shape) * static_cast<int64_t>(dtype_size(dtype));
  const int64_t esz = static_cast<int64_t>(dtype_size(dtype_));
  M2T_CHECK(offset >= 0 && offset * esz + bytes <= numel_ * esz, "tensor view: ", dtype_name(dtype), " ",
            shape_str(shape), " at ", offset, " outside ", dtype_name(dtype_), " ", shape_str(shape_));
  Tensor t = view(offset, {0});
  t.shape_ = shape;
  t.numel_ = t.capacity_ = numel_of(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::view(int64_t offset, const Shape& shape) const {
  const int64_t n = numel_of(shape);
  M2T_CHECK(offset >= 0 && offset + n <= numel_, "tensor view: ", shape_str(shape), " at ", offset, " outside ",
            shape_str(shape_));
  Tensor t;
  t.shape_ = shape;
  t.numel_ = n;
  t.capacity_ = n;
  t.device_ = device_;
  t.dtype_ = dtype_;
  t.storage_ = storage_;
  t.ptr_ = static_cast<char*>(ptr_) + offset * static_cast<int64_t>(dtype_size(dtype_));
  return t;
}

}  // namespace m2t

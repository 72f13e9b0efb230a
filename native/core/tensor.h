// A dense tensor: shape + dtype + device + storage from that device's caching allocator
// (core/allocator.h, owned by the device's backend). Activations are NHWC ([N, H, W, C], C
// fastest); conv weights OIHW as in PyTorch; linear weights [out, in].
//
// Storage is shared: a view (view()) aliases a range of another tensor's storage — how a
// parameter lives inside its flat arena (core/param.h). Copies between devices are explicit
// (copy_from across devices, to(), copy_from_host / copy_to_host); nothing moves implicitly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace m2t {

enum class DeviceKind { CPU, CUDA };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;
  static Device cpu() { return {}; }
  static Device cuda(int i) { return {DeviceKind::CUDA, i}; }
  bool is_cpu() const { return kind == DeviceKind::CPU; }
  bool operator==(const Device& o) const { return kind == o.kind && (kind == DeviceKind::CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;  // "cpu", "cuda:0"
};

// "cpu" or "cuda:N" (N in [0, 1023]); throws RangeError naming `what` otherwise.
Device parse_device(const std::string& s, const char* what = "device");

// f32: IEEE single. bf16: the upper 16 bits of an f32 (mixed precision: activations and
// convolutions; master weights, optimizer state and statistics stay f32). i32: indices (max-pool
// argmax).
enum class DType { F32, BF16, I32 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);

// f32 → bf16 rounding to nearest, ties to even (what oneDNN's reorders do); NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// f rounded to the nearest bf16 value, as f32.
inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

using Shape = std::vector<int64_t>;

int64_t numel_of(const Shape& s);
std::string shape_str(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled, on `dev` (its backend must be built: backend_for throws otherwise).
  explicit Tensor(Shape shape, Device dev = Device::cpu(), DType dtype = DType::F32);

  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t ndim() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  bool empty() const { return numel_ == 0; }
  Device device() const { return device_; }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  // Element access for f32 tensors (kernels; on the host for CPU tensors).
  float* data() { return static_cast<float*>(ptr_); }
  const float* data() const { return static_cast<const float*>(ptr_); }
  void* raw() { return ptr_; }
  const void* raw() const { return ptr_; }

  // Reallocates only when the element count grows (a view then detaches from its arena);
  // contents are unspecified afterwards.
  void resize(const Shape& shape);
  // An op's output of type `dtype`: resize(shape) when the tensor already has that type; a tensor
  // with no storage yet (default-constructed) becomes one of that type; any other type is an Error
  // naming `what` (an arena view is never silently replaced by a fresh allocation).
  void resize_as(const Shape& shape, DType dtype, const char* what);
  void zero();
  void fill(float v);  // f32 only
  void copy_from(const Tensor& other);          // same numel and dtype; any devices
  void copy_from_resized(const Tensor& other);  // takes other's shape
  Tensor clone() const;
  // This tensor on `dev`: itself (shared storage) when already there, else a copy.
  Tensor to(Device dev) const;
  // Host ↔ tensor copies of numel() values of the tensor's dtype (f32 or i32).
  void copy_from_host(const float* src) { host_in(src, DType::F32); }
  void copy_to_host(float* dst) const { host_out(dst, DType::F32); }
  void copy_from_host(const int32_t* src) { host_in(src, DType::I32); }
  void copy_to_host(int32_t* dst) const { host_out(dst, DType::I32); }
  // bf16 tensors: the raw 16-bit patterns (f32_to_bf16 / bf16_to_f32 convert).
  void copy_from_host(const uint16_t* src) { host_in(src, DType::BF16); }
  void copy_to_host(uint16_t* dst) const { host_out(dst, DType::BF16); }

  // f32 host memory owned elsewhere (a data-loader batch buffer), kept alive by `owner` for as
  // long as this tensor or a copy of it lives: no copy is made.
  static Tensor wrap_host(std::shared_ptr<void> owner, float* data, Shape shape);

  // `shape`'s worth of elements starting at element `offset`, sharing this tensor's storage.
  Tensor view(int64_t offset, const Shape& shape) const;
  // A view of type `dtype` starting `offset` elements (of this tensor's type) in: the same bytes
  // read as another type (an f32 arena slot holding a bf16 activation). Must fit inside.
  Tensor view(int64_t offset, const Shape& shape, DType dtype) const;
  // True when both share one storage block.
  bool same_storage(const Tensor& o) const { return storage_ && storage_ == o.storage_; }

 private:
  void allocate(int64_t n);
  void host_in(const void* src, DType want);
  void host_out(void* dst, DType want) const;
  Shape shape_;
  int64_t numel_ = 0;
  int64_t capacity_ = 0;
  Device device_{};
  DType dtype_ = DType::F32;
  std::shared_ptr<void> storage_;  // the allocator's block
  void* ptr_ = nullptr;            // first element (inside storage_)
};

}  // namespace m2t

// Shared vocabulary of the data pipeline: 8-bit RGB images and the one exception type (a core
// m2t::Error, so the binding maps both the same way).
#pragma once
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"

namespace m2t::data {

// Errors about user input (bad files, bad arguments). The binding maps `kind` to the JS error
// class of the same name; the native code never aborts the process on input it was given.
class DataError : public m2t::Error {
 public:
  using Kind = m2t::ErrorKind;
  explicit DataError(const std::string& msg, Kind kind = Kind::Error) : m2t::Error(kind, msg) {}
};

template <typename... A>
std::string cat(const A&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

// Interleaved RGB, rows contiguous (stride = 3·width).
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;

  void resize(int w, int h) {
    width = w;
    height = h;
    pixels.resize(static_cast<size_t>(w) * h * 3);
  }
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * 3; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * 3; }
};

// A read-only RGB window into someone else's pixels.
struct ImageView {
  const uint8_t* data = nullptr;
  int width = 0, height = 0;
  size_t stride = 0;  // bytes between rows

  static ImageView of(const Image& im) {
    return {im.pixels.data(), im.width, im.height, static_cast<size_t>(im.width) * 3};
  }
  const uint8_t* row(int y) const { return data + static_cast<size_t>(y) * stride; }
  ImageView sub(int x, int y, int w, int h) const {
    return {data + static_cast<size_t>(y) * stride + static_cast<size_t>(x) * 3, w, h, stride};
  }
};

}  // namespace m2t::data

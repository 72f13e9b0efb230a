// Decoding JPEG (libjpeg-turbo's TurboJPEG API) and PNG (libspng) to 8-bit RGB.
// Grayscale, palette, 16-bit and CMYK inputs become RGB; alpha is dropped (PIL's convert("RGB")).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.h"

namespace m2t::data {

enum class Format { Unknown, Jpeg, Png };

struct ImageInfo {
  Format format = Format::Unknown;
  int width = 0, height = 0;
};

// Largest image we agree to decode (decompression-bomb guard), in pixels: PIL's
// MAX_IMAGE_PIXELS by default (89,478,485 ≈ 0.25 GiB of RGB). A larger image is bad data (the
// loader counts it and draws another). Process-wide; set from the data config's maxImagePixels.
constexpr int64_t kDefaultMaxPixels = int64_t(1024) * 1024 * 1024 / 4 / 3;
int64_t max_image_pixels();
void set_max_image_pixels(int64_t n);

// Format from the file's first bytes (the extension is not trusted).
Format sniff(const uint8_t* data, size_t size);

// One per thread: owns a TurboJPEG handle (handles are not thread-safe).
class Decoder {
 public:
  Decoder();
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Reads only the header. Throws DataError for anything that is not a decodable JPEG/PNG header.
  ImageInfo probe(const uint8_t* data, size_t size);

  // Decodes to RGB. For JPEG, `denom` ∈ {1, 2, 4, 8} uses libjpeg-turbo's DCT-domain scaling:
  // the output is ceil(w/denom) × ceil(h/denom). PNG ignores `denom`. A truncated file, a corrupt
  // stream or any decoder error throws DataError (never a silently grey or zero image).
  void decode(const uint8_t* data, size_t size, int denom, Image& out);

 private:
  void decode_jpeg(const uint8_t* data, size_t size, int denom, Image& out);
  void decode_png(const uint8_t* data, size_t size, Image& out);
  [[noreturn]] void fail_jpeg(const char* what);
  void* tj_ = nullptr;
  std::vector<uint8_t> cmyk_;
};

// Scaled dimension of libjpeg-turbo's DCT scaling by 1/denom: ceil(dim / denom).
inline int jpeg_scaled(int dim, int denom) { return (dim + denom - 1) / denom; }

}  // namespace m2t::data

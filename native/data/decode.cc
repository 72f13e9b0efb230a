#include "decode.h"

#include <spng.h>
#include <turbojpeg.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>

namespace m2t::data {

Format sniff(const uint8_t* d, size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return Format::Jpeg;
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n >= 8 && std::memcmp(d, kPng, 8) == 0) return Format::Png;
  return Format::Unknown;
}

namespace {
std::atomic<int64_t> g_max_pixels{kDefaultMaxPixels};
}  // namespace

int64_t max_image_pixels() { return g_max_pixels.load(std::memory_order_relaxed); }
void set_max_image_pixels(int64_t n) { g_max_pixels.store(n, std::memory_order_relaxed); }

namespace {

void check_dims(int w, int h) {
  if (w <= 0 || h <= 0) throw DataError(cat("invalid image size ", w, "x", h));
  if (int64_t(w) * h > max_image_pixels())
    throw DataError(cat("image of ", w, "x", h, " pixels is larger than the limit of ", max_image_pixels(),
                        " pixels (data.maxImagePixels)"));
}

struct SpngCtx {
  spng_ctx* ctx;
  SpngCtx() : ctx(spng_ctx_new(0)) {
    if (!ctx) throw DataError("libspng: out of memory");
  }
  ~SpngCtx() { spng_ctx_free(ctx); }
};

void spng_check(int rc, const char* what) {
  if (rc != 0) throw DataError(cat("PNG ", what, ": ", spng_strerror(rc)));
}

void png_setup(SpngCtx& c, const uint8_t* data, size_t size) {
  // Bound memory a hostile file can make us allocate for ancillary chunks.
  spng_set_chunk_limits(c.ctx, 1u << 26, 1u << 26);
  spng_check(spng_set_png_buffer(c.ctx, data, size), "buffer");
}

// CMYK from an Adobe JPEG is stored inverted; PIL reads it as "CMYK;I" and converts with
// nk = 255 - k, out = nk - nk·c/255 (its MULDIV255 rounding). In stored values: nk = K, c = 255 - C.
inline uint8_t muldiv255(int a, int b) {
  int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

}  // namespace

Decoder::Decoder() : tj_(tjInitDecompress()) {
  if (!tj_) throw DataError("libjpeg-turbo: cannot create a decompressor");
}

Decoder::~Decoder() {
  if (tj_) tjDestroy(tj_);
}

// After a failed call a TurboJPEG 2.1 handle can be left mid-stream (the next header read then
// reports 0x0), so every error throws through here, which replaces the handle.
void Decoder::fail_jpeg(const char* what) {
  const std::string msg = cat(what, tjGetErrorStr2(tj_));
  tjDestroy(tj_);
  tj_ = tjInitDecompress();
  throw DataError(msg);
}

ImageInfo Decoder::probe(const uint8_t* data, size_t size) {
  ImageInfo info;
  info.format = sniff(data, size);
  if (info.format == Format::Jpeg) {
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(tj_, data, static_cast<unsigned long>(size), &w, &h, &subsamp, &cs) != 0)
      fail_jpeg("JPEG header: ");
    info.width = w;
    info.height = h;
  } else if (info.format == Format::Png) {
    SpngCtx c;
    png_setup(c, data, size);
    spng_ihdr ihdr{};
    spng_check(spng_get_ihdr(c.ctx, &ihdr), "header");
    if (ihdr.width > (1u << 30) || ihdr.height > (1u << 30)) throw DataError("PNG header: image too large");
    info.width = static_cast<int>(ihdr.width);
    info.height = static_cast<int>(ihdr.height);
  } else {
    throw DataError(size == 0 ? "empty file" : "not a JPEG or PNG file");
  }
  check_dims(info.width, info.height);
  return info;
}

void Decoder::decode(const uint8_t* data, size_t size, int denom, Image& out) {
  switch (sniff(data, size)) {
    case Format::Jpeg: return decode_jpeg(data, size, denom, out);
    case Format::Png: return decode_png(data, size, out);
    default: throw DataError(size == 0 ? "empty file" : "not a JPEG or PNG file");
  }
}

void Decoder::decode_jpeg(const uint8_t* data, size_t size, int denom, Image& out) {
  int w = 0, h = 0, subsamp = 0, cs = 0;
  if (tjDecompressHeader3(tj_, data, static_cast<unsigned long>(size), &w, &h, &subsamp, &cs) != 0)
    fail_jpeg("JPEG header: ");
  check_dims(w, h);
  if (denom != 1 && denom != 2 && denom != 4 && denom != 8) denom = 1;
  const int sw = jpeg_scaled(w, denom), sh = jpeg_scaled(h, denom);
  const bool cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  // Accurate integer IDCT and fancy upsampling (TurboJPEG's defaults): what PIL decodes with.
  const int flags = TJFLAG_LIMITSCANS;
  out.resize(sw, sh);
  uint8_t* dst = out.pixels.data();
  if (cmyk) {
    cmyk_.resize(size_t(sw) * sh * 4);
    dst = cmyk_.data();
  }
  const int rc = tjDecompress2(tj_, data, static_cast<unsigned long>(size), dst, sw, 0, sh,
                               cmyk ? TJPF_CMYK : TJPF_RGB, flags);
  if (rc != 0) {
    const std::string msg = tjGetErrorStr2(tj_);
    // Warnings leave a complete image, except for a truncated stream, which libjpeg pads with
    // grey: PIL refuses those ("image file is truncated"), and so do we.
    if (tjGetErrorCode(tj_) != TJERR_WARNING || msg.find("Premature end") != std::string::npos)
      fail_jpeg("JPEG: ");
  }
  if (cmyk) {
    const uint8_t* s = cmyk_.data();
    uint8_t* d = out.pixels.data();
    for (size_t i = 0, n = size_t(sw) * sh; i < n; ++i, s += 4, d += 3) {
      const int nk = s[3];
      for (int c = 0; c < 3; ++c) d[c] = static_cast<uint8_t>(nk - muldiv255(255 - s[c], nk));
    }
  }
}

void Decoder::decode_png(const uint8_t* data, size_t size, Image& out) {
  SpngCtx c;
  png_setup(c, data, size);
  spng_ihdr ihdr{};
  spng_check(spng_get_ihdr(c.ctx, &ihdr), "header");
  check_dims(static_cast<int>(ihdr.width), static_cast<int>(ihdr.height));
  size_t need = 0;
  spng_check(spng_decoded_image_size(c.ctx, SPNG_FMT_RGB8, &need), "size");
  out.resize(static_cast<int>(ihdr.width), static_cast<int>(ihdr.height));
  if (need != out.pixels.size()) throw DataError("PNG: unexpected decoded size");
  spng_check(spng_decode_image(c.ctx, out.pixels.data(), need, SPNG_FMT_RGB8, 0), "decode");
}

}  // namespace m2t::data

#include "pipeline.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>
#include <utility>

#include "color.h"

namespace m2t::data {

ViewConfig ViewConfig::byol_view1() {
  ViewConfig c;
  c.jitter_p = 0.8;
  c.brightness = 0.4;
  c.contrast = 0.4;
  c.saturation = 0.2;
  c.hue = 0.1;
  c.blur_p = 1.0;
  c.gray_p = 0.2;
  c.flip_p = 0.5;
  return c;
}

ViewConfig ViewConfig::byol_view2() {
  ViewConfig c = byol_view1();
  c.blur_p = 0.1;
  c.solarize_p = 0.2;
  return c;
}

ViewConfig ViewConfig::linear_train() {
  ViewConfig c;
  c.flip_p = 0.5;
  return c;
}

ViewConfig ViewConfig::validation() {
  ViewConfig c;
  c.crop = Crop::Center;
  c.resize = 256;
  return c;
}

void ViewConfig::validate(const std::string& where) const {
  const auto bad = [&](const std::string& field, const std::string& why) {
    throw DataError(cat(where, ".", field, " ", why), DataError::Kind::RangeError);
  };
  const auto prob = [&](const char* f, double p) {
    if (!(p >= 0.0 && p <= 1.0)) bad(f, cat("must be a probability in [0, 1], got ", p));
  };
  if (out_h < 1 || out_w < 1 || out_h > 16384 || out_w > 16384)
    bad("size", cat("must be in [1, 16384], got ", out_h, "x", out_w));
  if (crop == Crop::RandomResized) {
    if (!(rrc.scale_lo > 0.0 && rrc.scale_lo <= rrc.scale_hi && std::isfinite(rrc.scale_hi)))
      bad("scale", cat("must satisfy 0 < min <= max, got [", rrc.scale_lo, ", ", rrc.scale_hi, "]"));
    if (!(rrc.ratio_lo > 0.0 && rrc.ratio_lo <= rrc.ratio_hi && std::isfinite(rrc.ratio_hi)))
      bad("ratio", cat("must satisfy 0 < min <= max, got [", rrc.ratio_lo, ", ", rrc.ratio_hi, "]"));
  } else if (resize < 0 || resize > 65536) {
    bad("resize", cat("must be in [0, 65536], got ", resize));
  }
  prob("jitter.p", jitter_p);
  for (auto [f, v] : {std::pair{"jitter.brightness", brightness}, {"jitter.contrast", contrast},
                      {"jitter.saturation", saturation}})
    if (!(v >= 0.0 && std::isfinite(v))) bad(f, cat("must be >= 0, got ", v));
  if (!(hue >= 0.0 && hue <= 0.5)) bad("jitter.hue", cat("must be in [0, 0.5], got ", hue));
  prob("blur.p", blur_p);
  if (!(sigma_lo > 0.0 && sigma_lo <= sigma_hi && std::isfinite(sigma_hi)))
    bad("blur.sigma", cat("must satisfy 0 < min <= max, got [", sigma_lo, ", ", sigma_hi, "]"));
  prob("grayscale.p", gray_p);
  prob("flip.p", flip_p);
  prob("solarize.p", solarize_p);
  if (solarize_threshold < 0 || solarize_threshold > 256)
    bad("solarize.threshold", cat("must be in [0, 256], got ", solarize_threshold));
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(mean[c])) bad("mean", "must be finite");
    if (!(std::isfinite(std[c]) && std[c] != 0.0f)) bad("std", "must be finite and non-zero");
  }
}

ViewParams draw_view_params(const ViewConfig& cfg, int width, int height, uint64_t key) {
  ViewParams p;
  // Geometry and colour draw from separate streams, so neither shifts the other.
  Rng geo(mix64(key ^ static_cast<uint64_t>(Stream::Crop)));
  Rng col(mix64(key ^ static_cast<uint64_t>(Stream::Color)));
  if (cfg.crop == ViewConfig::Crop::RandomResized) {
    p.crop = random_resized_crop(width, height, cfg.rrc, geo);
    p.resized_w = cfg.out_w;
    p.resized_h = cfg.out_h;
  } else {
    if (cfg.resize > 0) {
      std::tie(p.resized_w, p.resized_h) = shorter_side_dims(width, height, cfg.resize);
    } else {
      p.resized_w = width;
      p.resized_h = height;
    }
    p.crop.top = center_offset(p.resized_h, cfg.out_h);
    p.crop.left = center_offset(p.resized_w, cfg.out_w);
    p.crop.height = cfg.out_h;
    p.crop.width = cfg.out_w;
  }
  // ColorJitter: apply with p, then torch.randperm(4) (Fisher–Yates), then the four factors.
  p.jitter = col.chance(cfg.jitter_p);
  for (int i = 3; i > 0; --i) std::swap(p.order[i], p.order[col.below(uint64_t(i) + 1)]);
  p.brightness = static_cast<float>(col.uniform(std::max(0.0, 1.0 - cfg.brightness), 1.0 + cfg.brightness));
  p.contrast = static_cast<float>(col.uniform(std::max(0.0, 1.0 - cfg.contrast), 1.0 + cfg.contrast));
  p.saturation = static_cast<float>(col.uniform(std::max(0.0, 1.0 - cfg.saturation), 1.0 + cfg.saturation));
  p.hue = static_cast<float>(col.uniform(-cfg.hue, cfg.hue));
  p.blur = col.chance(cfg.blur_p);
  p.sigma = static_cast<float>(col.uniform(cfg.sigma_lo, cfg.sigma_hi));
  p.gray = col.chance(cfg.gray_p);
  p.flip = col.chance(cfg.flip_p);
  p.solarize = col.chance(cfg.solarize_p);
  return p;
}

void PhotometricOps::apply(Image& im, const ViewConfig& cfg, const ViewParams& p) {
  if (p.jitter) {
    for (int op : p.order) {
      switch (op) {  // a zero strength means torchvision's None: not applied at all
        case 0: if (cfg.brightness > 0) adjust_brightness(im, p.brightness); break;
        case 1: if (cfg.contrast > 0) adjust_contrast(im, p.contrast); break;
        case 2: if (cfg.saturation > 0) adjust_saturation(im, p.saturation); break;
        default: if (cfg.hue > 0) adjust_hue(im, p.hue); break;
      }
    }
  }
  if (p.blur) blur_.apply(im, p.sigma);
  if (p.gray) to_grayscale(im);
  // Flip commutes with every op here (all are point-wise, mirror-symmetric or global), so it is
  // folded into the final write.
  if (p.solarize) solarize(im, cfg.solarize_threshold);
}

void normalize_lut(const ViewConfig& cfg, float lut[3][256]) {
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) / 255.0f - cfg.mean[c]) / cfg.std[c];
}

void normalize_into(const Image& im, const ViewConfig& cfg, bool flip, float* dst) {
  float lut[3][256];
  normalize_lut(cfg, lut);
  const int W = im.width;
  for (int y = 0; y < im.height; ++y) {
    const uint8_t* s = im.row(y);
    float* d = dst + size_t(y) * W * 3;
    if (!flip) {
      for (int x = 0; x < W; ++x, s += 3, d += 3) {
        d[0] = lut[0][s[0]];
        d[1] = lut[1][s[1]];
        d[2] = lut[2][s[2]];
      }
    } else {
      d += size_t(W - 1) * 3;
      for (int x = 0; x < W; ++x, s += 3, d -= 3) {
        d[0] = lut[0][s[0]];
        d[1] = lut[1][s[1]];
        d[2] = lut[2][s[2]];
      }
    }
  }
}

ImageView Augmenter::source_view(const SourceRef& src, int denom) {
  if (src.encoded) {
    decoder_.decode(src.bytes, src.size, denom, decoded_);
    return ImageView::of(decoded_);
  }
  if (!src.pixels || src.width < 1 || src.height < 1 || (src.channels != 1 && src.channels != 3))
    throw DataError("invalid raw pixel source");
  if (src.channels == 3) return {src.pixels, src.width, src.height, size_t(src.width) * 3};
  // Grayscale (or any single channel) → RGB by replication.
  decoded_.resize(src.width, src.height);
  const size_t n = size_t(src.width) * src.height;
  for (size_t i = 0; i < n; ++i)
    decoded_.pixels[i * 3] = decoded_.pixels[i * 3 + 1] = decoded_.pixels[i * 3 + 2] = src.pixels[i * src.channels];
  return ImageView::of(decoded_);
}

void Augmenter::decode_full(const SourceRef& src, Image& out) {
  const ImageView v = source_view(src, 1);
  out.resize(v.width, v.height);
  for (int y = 0; y < v.height; ++y) std::memcpy(out.row(y), v.row(y), size_t(v.width) * 3);
}

void Augmenter::render(const SourceRef& src, const ViewConfig* cfgs, const uint64_t* keys, int n,
                       float* const* float_out, Image* u8_out, ViewParams* params_out) {
  int W = src.width, H = src.height;
  bool jpeg = false;
  if (src.encoded) {
    const ImageInfo info = decoder_.probe(src.bytes, src.size);
    W = info.width;
    H = info.height;
    jpeg = info.format == Format::Jpeg;
  }
  ViewParams params[8];
  if (n < 1 || n > 8) throw DataError(cat("a sample has 1 to 8 views, asked for ", n));
  for (int v = 0; v < n; ++v) params[v] = draw_view_params(cfgs[v], W, H, keys[v]);

  // DCT-domain downscaling by 1/d is allowed when every view still downsamples afterwards:
  // each crop (or the resized image) needs at least the pixels it will become.
  int denom = 1;
  if (jpeg) {
    for (int d : {8, 4, 2}) {
      bool ok = true;
      for (int v = 0; v < n && ok; ++v) {
        const ViewConfig& c = cfgs[v];
        const ViewParams& p = params[v];
        if (!c.scaled_decode) ok = false;
        else if (c.crop == ViewConfig::Crop::RandomResized)
          ok = p.crop.width >= d * c.out_w && p.crop.height >= d * c.out_h;
        else
          ok = c.resize > 0 && W >= d * p.resized_w && H >= d * p.resized_h;
      }
      if (ok) {
        denom = d;
        break;
      }
    }
  }
  last_denom_ = denom;
  const ImageView img = source_view(src, denom);
  for (int v = 0; v < n; ++v) {
    if (params_out) params_out[v] = params[v];
    renderer_.render(img, W, H, denom, cfgs[v], params[v], float_out ? float_out[v] : nullptr,
                     u8_out ? &u8_out[v] : nullptr);
  }
}

void ViewRenderer::render(const ImageView& img, int W, int H, int denom, const ViewConfig& c,
                          const ViewParams& p, float* float_out, Image* u8_out) {
  const float inv = 1.0f / static_cast<float>(denom);
  view_.resize(c.out_w, c.out_h);
  if (c.crop == ViewConfig::Crop::RandomResized) {
    if (denom == 1) {
      // torchvision: img.crop(box).resize(size) — the crop is the resampler's whole source.
      const float box[4] = {0.f, 0.f, float(p.crop.width), float(p.crop.height)};
      resampler_.run(img.sub(p.crop.left, p.crop.top, p.crop.width, p.crop.height), box, c.out_w,
                     c.out_h, 0, 0, c.out_w, c.out_h, view_.pixels.data());
    } else {
      // The crop in scaled pixels: clamp to the covering integer window, fractional box inside.
      const float x0 = p.crop.left * inv, x1 = (p.crop.left + p.crop.width) * inv;
      const float y0 = p.crop.top * inv, y1 = (p.crop.top + p.crop.height) * inv;
      const int ix0 = static_cast<int>(std::floor(x0)), iy0 = static_cast<int>(std::floor(y0));
      const int ix1 = std::min(img.width, static_cast<int>(std::ceil(x1)));
      const int iy1 = std::min(img.height, static_cast<int>(std::ceil(y1)));
      const float box[4] = {x0 - ix0, y0 - iy0, std::min(x1, float(ix1)) - ix0, std::min(y1, float(iy1)) - iy0};
      resampler_.run(img.sub(ix0, iy0, ix1 - ix0, iy1 - iy0), box, c.out_w, c.out_h, 0, 0, c.out_w,
                     c.out_h, view_.pixels.data());
    }
  } else {
    // Resize the whole image to resized_w × resized_h, keep only the centre window.
    const float box[4] = {0.f, 0.f, std::min(W * inv, float(img.width)), std::min(H * inv, float(img.height))};
    resampler_.run(img, box, p.resized_w, p.resized_h, p.crop.left, p.crop.top, c.out_w, c.out_h,
                   view_.pixels.data());
  }
  ops_.apply(view_, c, p);
  if (u8_out) {
    Image& o = *u8_out;
    o.resize(c.out_w, c.out_h);
    for (int y = 0; y < c.out_h; ++y) {
      const uint8_t* s = view_.row(y);
      uint8_t* d = o.row(y);
      if (!p.flip) std::memcpy(d, s, size_t(c.out_w) * 3);
      else
        for (int x = 0; x < c.out_w; ++x) std::memcpy(d + size_t(c.out_w - 1 - x) * 3, s + size_t(x) * 3, 3);
    }
  } else {
    normalize_into(view_, c, p.flip, float_out);
  }
}

}  // namespace m2t::data

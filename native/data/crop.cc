#include "crop.h"
#include "core/cpu_dispatch.h"

#include <algorithm>
#include <cstring>

namespace m2t::data {

std::pair<int, int> shorter_side_dims(int width, int height, int size) {
  if (width <= height) return {size, static_cast<int>(double(size) * height / width)};
  return {static_cast<int>(double(size) * width / height), size};
}

int center_offset(int size, int crop) {
  if (crop > size) return -((crop - size) / 2);
  return round_half_even((size - crop) / 2.0);
}

namespace {
constexpr int kPrecision = 22;  // PIL: 32 bits − 8 for the result − 2 for sign and overflow

inline double bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

inline uint8_t clip8(int32_t s) {
  const int32_t v = s >> kPrecision;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}
}  // namespace

// Triangle filter stretched by the downscale factor (antialiasing), each output's taps
// normalised to sum 1, then quantised to 22-bit fixed point with rounding away from zero.
void Resampler::compute(int in_size, float in0, float in1, int out_size, int first, int count,
                        Coeffs& c) {
  const double scale = double(in1 - in0) / out_size;  // float difference, as PIL
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  const double ss = 1.0 / filterscale;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.assign(size_t(count) * 2, 0);
  c.k.assign(size_t(count) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int i = 0; i < count; ++i) {
    const int xx = first + i;
    const double center = in0 + (xx + 0.5) * scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    const int n = std::max(xmax - xmin, 0);
    double total = 0.0;
    for (int x = 0; x < n; ++x) {
      w[x] = bilinear((x + xmin - center + 0.5) * ss);
      total += w[x];
    }
    int32_t* k = &c.k[size_t(i) * c.ksize];
    for (int x = 0; x < n; ++x) {
      const double v = total != 0.0 ? w[x] / total : w[x];
      k[x] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecision) : 0.5 + v * (1 << kPrecision));
    }
    c.bounds[size_t(i) * 2] = xmin;
    c.bounds[size_t(i) * 2 + 1] = n;
  }
}

namespace {

// Horizontal pass: `rows` rows of `in`, output column x reads in[bounds[2x] - shift …] with taps k.
M2T_CPU_CLONES void hpass(const ImageView& in, int rows, const std::vector<int>& bounds, const std::vector<int32_t>& kk,
           int ks, int cols, int shift, uint8_t* out, size_t out_stride) {
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = in.row(r);
    uint8_t* o = out + size_t(r) * out_stride;
    for (int x = 0; x < cols; ++x) {
      const int xmin = bounds[size_t(x) * 2] - shift, n = bounds[size_t(x) * 2 + 1];
      const int32_t* k = &kk[size_t(x) * ks];
      const uint8_t* p = row + size_t(xmin) * 3;
      int32_t s0 = 1 << (kPrecision - 1), s1 = s0, s2 = s0;
      for (int t = 0; t < n; ++t, p += 3) {
        s0 += p[0] * k[t];
        s1 += p[1] * k[t];
        s2 += p[2] * k[t];
      }
      o[x * 3] = clip8(s0);
      o[x * 3 + 1] = clip8(s1);
      o[x * 3 + 2] = clip8(s2);
    }
  }
}

// Vertical pass: output row y accumulates rows in[bounds[2y] - shift …], `n3` bytes wide, whole
// rows at a time (vectorises).
M2T_CPU_CLONES void vpass(const ImageView& in, int rows, const std::vector<int>& bounds, const std::vector<int32_t>& kk,
           int ks, size_t n3, int shift, uint8_t* out, size_t out_stride, std::vector<int32_t>& acc_buf) {
  acc_buf.resize(n3);
  int32_t* acc = acc_buf.data();
  for (int y = 0; y < rows; ++y) {
    const int ymin = bounds[size_t(y) * 2] - shift, n = bounds[size_t(y) * 2 + 1];
    const int32_t* k = &kk[size_t(y) * ks];
    std::fill(acc, acc + n3, int32_t(1) << (kPrecision - 1));
    for (int t = 0; t < n; ++t) {
      const uint8_t* src = in.row(ymin + t);
      const int32_t kt = k[t];
      for (size_t i = 0; i < n3; ++i) acc[i] += src[i] * kt;
    }
    uint8_t* o = out + size_t(y) * out_stride;
    for (size_t i = 0; i < n3; ++i) o[i] = clip8(acc[i]);
  }
}

// RGB pixel transpose in cache tiles: out (w rows of h pixels) = in (h rows of w pixels)ᵀ.
void transpose_rgb(const ImageView& in, uint8_t* out) {
  constexpr int T = 32;
  const int w = in.width, h = in.height;
  for (int y0 = 0; y0 < h; y0 += T)
    for (int x0 = 0; x0 < w; x0 += T)
      for (int y = y0; y < std::min(h, y0 + T); ++y) {
        const uint8_t* s = in.row(y);
        for (int x = x0; x < std::min(w, x0 + T); ++x) {
          uint8_t* d = out + (size_t(x) * h + y) * 3;
          d[0] = s[x * 3];
          d[1] = s[x * 3 + 1];
          d[2] = s[x * 3 + 2];
        }
      }
}

}  // namespace

// The horizontal pass as a vertical one on the transposed rows (vectorises across rows), then
// transposed back: the same integer arithmetic, so the same bytes as hpass.
void Resampler::hpass_any(const ImageView& in, int rows, const Coeffs& c, int cols, int shift, uint8_t* out,
                          size_t out_stride) {
  if (rows < 8) return hpass(in, rows, c.bounds, c.k, c.ksize, cols, shift, out, out_stride);
  const int first = c.bounds[0] - shift;
  const int last = c.bounds[size_t(cols - 1) * 2] + c.bounds[size_t(cols - 1) * 2 + 1] - shift;
  const ImageView src = in.sub(first, 0, last - first, rows);
  tin_.resize(size_t(src.width) * rows * 3);
  transpose_rgb(src, tin_.data());
  const size_t n3 = size_t(rows) * 3;
  tout_.resize(size_t(cols) * n3);
  vpass(ImageView{tin_.data(), rows, src.width, n3}, cols, c.bounds, c.k, c.ksize, n3, shift + first, tout_.data(), n3, acc_);
  for (int y = 0; y < rows; ++y) {
    uint8_t* d = out + size_t(y) * out_stride;
    for (int x = 0; x < cols; ++x) {
      const uint8_t* s = tout_.data() + size_t(x) * n3 + size_t(y) * 3;
      d[x * 3] = s[0];
      d[x * 3 + 1] = s[1];
      d[x * 3 + 2] = s[2];
    }
  }
}

void Resampler::run(const ImageView& src, const float box[4], int out_w, int out_h, int wx, int wy,
                    int win_w, int win_h, uint8_t* dst) {
  const int x_lo = std::max(wx, 0), x_hi = std::min(wx + win_w, out_w);
  const int y_lo = std::max(wy, 0), y_hi = std::min(wy + win_h, out_h);
  const size_t dst_stride = size_t(win_w) * 3;
  if (x_lo > wx || y_lo > wy || x_hi < wx + win_w || y_hi < wy + win_h)
    std::memset(dst, 0, dst_stride * win_h);
  if (x_lo >= x_hi || y_lo >= y_hi) return;
  const int cols = x_hi - x_lo, rows = y_hi - y_lo;
  uint8_t* out0 = dst + size_t(y_lo - wy) * dst_stride + size_t(x_lo - wx) * 3;

  // PIL skips a pass whose coefficients would be the identity.
  const bool need_h = out_w != src.width || box[0] != 0.f || box[2] != float(out_w);
  const bool need_v = out_h != src.height || box[1] != 0.f || box[3] != float(out_h);
  if (need_h) compute(src.width, box[0], box[2], out_w, x_lo, cols, horiz_);
  if (need_v) compute(src.height, box[1], box[3], out_h, y_lo, rows, vert_);

  if (!need_h && !need_v) {
    for (int y = 0; y < rows; ++y) std::memcpy(out0 + y * dst_stride, src.row(y_lo + y) + size_t(x_lo) * 3, size_t(cols) * 3);
    return;
  }
  if (!need_v) {
    hpass_any(src.sub(0, y_lo, src.width, rows), rows, horiz_, cols, 0, out0, dst_stride);
    return;
  }
  if (!need_h) {
    vpass(src.sub(x_lo, 0, cols, src.height), rows, vert_.bounds, vert_.k, vert_.ksize, size_t(cols) * 3, 0, out0,
          dst_stride, acc_);
    return;
  }
  // Pillow 13 reduces vertically first when the rows shrink by more than twice what the columns
  // do: out_h < in_h and 2·(in_w − out_w) < in_h − out_h (measured against Pillow; the order
  // changes the 8-bit rounding of the intermediate image).
  const bool vertical_first = out_h < src.height && 2 * (src.width - out_w) < src.height - out_h;
  if (!vertical_first) {
    const int row0 = vert_.bounds[0];
    const int row1 = vert_.bounds[size_t(rows - 1) * 2] + vert_.bounds[size_t(rows - 1) * 2 + 1];
    tmp_.resize(size_t(row1 - row0) * cols * 3);
    hpass_any(src.sub(0, row0, src.width, row1 - row0), row1 - row0, horiz_, cols, 0, tmp_.data(), size_t(cols) * 3);
    const ImageView mid{tmp_.data(), cols, row1 - row0, size_t(cols) * 3};
    vpass(mid, rows, vert_.bounds, vert_.k, vert_.ksize, size_t(cols) * 3, row0, out0, dst_stride, acc_);
  } else {
    const int col0 = horiz_.bounds[0];
    const int col1 = horiz_.bounds[size_t(cols - 1) * 2] + horiz_.bounds[size_t(cols - 1) * 2 + 1];
    tmp_.resize(size_t(rows) * (col1 - col0) * 3);
    vpass(src.sub(col0, 0, col1 - col0, src.height), rows, vert_.bounds, vert_.k, vert_.ksize,
          size_t(col1 - col0) * 3, 0, tmp_.data(), size_t(col1 - col0) * 3, acc_);
    const ImageView mid{tmp_.data(), col1 - col0, rows, size_t(col1 - col0) * 3};
    hpass_any(mid, rows, horiz_, cols, col0, out0, dst_stride);
  }
}

}  // namespace m2t::data

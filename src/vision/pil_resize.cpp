#include "vision/pil_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace llama3::vision {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

// Pillow's weights for one axis: output pixel i reads k[i*ksize .. +count) at source
// [first, first + count).
struct AxisWeights {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// precompute_coeffs + normalize_coeffs_8bpc, operation for operation: the same doubles in the
// same order give the same weights. The source extent passes through float as Pillow's box does.
AxisWeights axis_weights(int in_size, int out_size) {
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;  // BILINEAR's support is 1
  AxisWeights w;
  // Pillow's malloc fails (MemoryError) long before this; our limit keeps the table under 512 MiB.
  const double ksize = std::ceil(support) * 2 + 1;
  check(ksize * out_size <= double{1 << 27}, "resizing {} pixels to {} needs too large a filter", in_size, out_size);
  w.ksize = static_cast<int>(ksize);
  w.first.resize(out_size);
  w.count.resize(out_size);
  w.k.assign(static_cast<size_t>(out_size) * w.ksize, 0);
  std::vector<double> k(w.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = bilinear_filter((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
      const double scaled = k[x] * (1 << kPrecisionBits);
      w.k[static_cast<size_t>(xx) * w.ksize + x] = static_cast<int32_t>(k[x] < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    w.first[xx] = xmin;
    w.count[xx] = xmax;
  }
  return w;
}

uint8_t clip8(int32_t v) { return static_cast<uint8_t>(std::clamp(v >> kPrecisionBits, 0, 255)); }

// out[y][x] = sum_i in[y][first[x] + i] * k[x][i], over rows [row0, row0 + rows) of `in`.
void horizontal_pass(const uint8_t* in, int in_width, int row0, int rows, const AxisWeights& w, int out_width,
                     uint8_t* out) {
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in + (static_cast<size_t>(row0) + y) * in_width * 3;
    uint8_t* dst = out + static_cast<size_t>(y) * out_width * 3;
    for (int x = 0; x < out_width; ++x) {
      const int32_t* k = &w.k[static_cast<size_t>(x) * w.ksize];
      const uint8_t* s = src + static_cast<size_t>(w.first[x]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int i = 0; i < w.count[x]; ++i) {
        s0 += s[3 * i] * k[i];
        s1 += s[3 * i + 1] * k[i];
        s2 += s[3 * i + 2] * k[i];
      }
      dst[3 * x] = clip8(s0);
      dst[3 * x + 1] = clip8(s1);
      dst[3 * x + 2] = clip8(s2);
    }
  }
}

// out[y][x] = sum_i in[first[y] - row0 + i][x] * k[y][i].
void vertical_pass(const uint8_t* in, int width, int row0, const AxisWeights& w, int out_height, uint8_t* out) {
  const size_t stride = static_cast<size_t>(width) * 3;
  for (int y = 0; y < out_height; ++y) {
    const int32_t* k = &w.k[static_cast<size_t>(y) * w.ksize];
    const uint8_t* src = in + static_cast<size_t>(w.first[y] - row0) * stride;
    uint8_t* dst = out + static_cast<size_t>(y) * stride;
    for (size_t x = 0; x < stride; ++x) {
      int32_t s = 1 << (kPrecisionBits - 1);
      for (int i = 0; i < w.count[y]; ++i) s += src[i * stride + x] * k[i];
      dst[x] = clip8(s);
    }
  }
}

}  // namespace

RgbImage pil_resize_bilinear(const RgbImage& image, int64_t width, int64_t height) {
  check(width > 0 && height > 0, "cannot resize an image to {}x{} pixels: height and width must be > 0", width, height);
  check(image.width > 0 && image.height > 0 && image.pixels.size() == static_cast<size_t>(image.width * image.height * 3),
        "cannot resize an empty or inconsistent {}x{} image", image.width, image.height);
  check(std::max({width, height, image.width, image.height}) <= (int64_t{1} << 30), "image side too large to resize");
  if (width == image.width && height == image.height) return image;  // Image.resize returns a copy

  const int in_w = static_cast<int>(image.width), in_h = static_cast<int>(image.height);
  const int out_w = static_cast<int>(width), out_h = static_cast<int>(height);
  const AxisWeights vert = axis_weights(in_h, out_h);
  // The horizontal pass covers only the source rows the vertical one reads.
  const int row0 = vert.first.front(), row_end = vert.first.back() + vert.count.back();

  std::vector<uint8_t> temp;
  const uint8_t* rows = image.pixels.data();
  int rows_width = in_w, rows_first = 0;
  if (out_w != in_w) {
    temp.resize(static_cast<size_t>(row_end - row0) * out_w * 3);
    horizontal_pass(image.pixels.data(), in_w, row0, row_end - row0, axis_weights(in_w, out_w), out_w, temp.data());
    rows = temp.data();
    rows_width = out_w;
    rows_first = row0;
  }
  RgbImage out;
  out.width = width;
  out.height = height;
  if (out_h != in_h) {
    out.pixels.resize(static_cast<size_t>(out_w) * out_h * 3);
    vertical_pass(rows, rows_width, rows_first, vert, out_h, out.pixels.data());
  } else {
    // Same height: the horizontal pass's rows are the result (row0 is 0 and row_end the height).
    out.pixels = std::move(temp);
  }
  return out;
}

}  // namespace llama3::vision

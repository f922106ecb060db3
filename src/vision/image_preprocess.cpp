#include "vision/image_preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "vision/pil_resize.h"

namespace llama3::vision {

namespace {

constexpr int64_t kMaxTileSize = 1 << 14;
constexpr int64_t kMaxTiles = 1024;

void check_arguments(int64_t tile_size, int64_t max_tiles) {
  check(tile_size >= 1 && tile_size <= kMaxTileSize, "image tile size {} is outside 1..{}", tile_size, kMaxTileSize);
  check(max_tiles >= 1 && max_tiles <= kMaxTiles, "maximum number of image tiles {} is outside 1..{}", max_tiles,
        kMaxTiles);
}

// Meta's find_supported_resolutions, as (tiles_w, tiles_h): get_best_fit reads each pair's first
// element as the width. Numbers of tiles from max_tiles down to 1, each one's factor pairs
// (f, n / f) by ascending f, grouped by the ratio f / (n / f) in order of first appearance
// (Python's dict of float keys: equal fractions give equal doubles).
std::vector<std::pair<int64_t, int64_t>> meta_canvases(int64_t max_tiles) {
  std::vector<std::pair<int64_t, int64_t>> ratios;  // reduced (f, n / f), in first-seen order
  std::vector<std::vector<std::pair<int64_t, int64_t>>> groups;
  for (int64_t n = max_tiles; n >= 1; --n) {
    for (int64_t f = 1; f <= n; ++f) {
      if (n % f != 0) continue;
      const int64_t g = std::gcd(f, n / f);
      const std::pair<int64_t, int64_t> ratio{f / g, n / f / g};
      const auto it = std::find(ratios.begin(), ratios.end(), ratio);
      if (it == ratios.end()) {
        ratios.push_back(ratio);
        groups.push_back({{f, n / f}});
      } else {
        groups[static_cast<size_t>(it - ratios.begin())].push_back({f, n / f});
      }
    }
  }
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& group : groups) out.insert(out.end(), group.begin(), group.end());
  return out;
}

// The normalized value of every uint8 per channel: ToTensor's float32 division by 255, then
// Normalize's float32 subtraction and division (torch rounds each step to float32; the
// constants are Python doubles rounded to float32, hence the casts from double literals).
struct NormalizeTable {
  float value[3][256];
  NormalizeTable() {
    const float mean[3] = {static_cast<float>(0.48145466), static_cast<float>(0.4578275),
                           static_cast<float>(0.40821073)};
    const float std[3] = {static_cast<float>(0.26862954), static_cast<float>(0.26130258),
                          static_cast<float>(0.27577711)};
    for (int c = 0; c < 3; ++c) {
      for (int v = 0; v < 256; ++v) {
        const float x = static_cast<float>(v) / 255.0f;
        value[c][v] = (x - mean[c]) / std[c];
      }
    }
  }
};

}  // namespace

std::vector<std::pair<int64_t, int64_t>> supported_canvases(int64_t max_tiles) {
  check(max_tiles >= 1 && max_tiles <= kMaxTiles, "maximum number of image tiles {} is outside 1..{}", max_tiles,
        kMaxTiles);
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int64_t h = 1; h <= max_tiles; ++h)
    for (int64_t w = 1; w <= max_tiles; ++w)
      if (h * w <= max_tiles) out.emplace_back(h, w);
  return out;
}

int64_t hf_aspect_ratio_id(int64_t tiles_h, int64_t tiles_w, int64_t max_tiles) {
  const auto canvases = supported_canvases(max_tiles);
  const auto it = std::find(canvases.begin(), canvases.end(), std::pair<int64_t, int64_t>{tiles_h, tiles_w});
  check(it != canvases.end(), "a canvas of {}x{} tiles (height x width) is not one of max_tiles {}", tiles_h, tiles_w,
        max_tiles);
  return static_cast<int64_t>(it - canvases.begin()) + 1;
}

CanvasPlan plan_canvas(int64_t width, int64_t height, int64_t tile_size, int64_t max_tiles) {
  check_arguments(tile_size, max_tiles);
  check(width > 0 && height > 0, "cannot place an image of {}x{} pixels on a canvas", width, height);
  const auto canvases = meta_canvases(max_tiles);

  // get_best_fit, in float32 as torch computes it.
  std::vector<float> scales;
  for (const auto& [tw, th] : canvases) {
    const float scale_w = static_cast<float>(tw * tile_size) / static_cast<float>(width);
    const float scale_h = static_cast<float>(th * tile_size) / static_cast<float>(height);
    scales.push_back(scale_w > scale_h ? scale_h : scale_w);
  }
  float selected = 0;
  bool upscaling = false;
  for (float s : scales) {
    if (s >= 1 && (!upscaling || s < selected)) {
      selected = s;
      upscaling = true;
    }
  }
  if (!upscaling) selected = *std::max_element(scales.begin(), scales.end());
  size_t best = canvases.size();
  for (size_t i = 0; i < canvases.size(); ++i) {
    if (scales[i] != selected) continue;
    const int64_t area = canvases[i].first * canvases[i].second;
    if (best == canvases.size() || area < canvases[best].first * canvases[best].second) best = i;  // argmin: first
  }
  const int64_t canvas_w = canvases[best].first * tile_size, canvas_h = canvases[best].second * tile_size;

  // resize_without_distortion with max_upscaling_size = tile_size, then
  // get_max_res_without_distortion, in Python's doubles.
  const int64_t target_w = std::min(std::max(width, tile_size), canvas_w);
  const int64_t target_h = std::min(std::max(height, tile_size), canvas_h);
  const double scale_w = static_cast<double>(target_w) / static_cast<double>(width);
  const double scale_h = static_cast<double>(target_h) / static_cast<double>(height);
  CanvasPlan plan;
  plan.tiles_w = canvases[best].first;
  plan.tiles_h = canvases[best].second;
  if (scale_w < scale_h) {
    plan.resized_width = target_w;
    plan.resized_height = std::min(static_cast<int64_t>(std::floor(static_cast<double>(height) * scale_w)), target_h);
  } else {
    plan.resized_height = target_h;
    plan.resized_width = std::min(static_cast<int64_t>(std::floor(static_cast<double>(width) * scale_h)), target_w);
  }
  check(plan.resized_width > 0 && plan.resized_height > 0,
        "an image of {}x{} pixels is too elongated for {} tiles of {} pixels: it would be resized to {}x{}", width,
        height, max_tiles, tile_size, plan.resized_width, plan.resized_height);
  return plan;
}

RgbImage resize_and_pad(const RgbImage& image, int64_t tile_size, int64_t max_tiles) {
  check(image.width > 0 && image.height > 0 && image.pixels.size() == static_cast<size_t>(image.width * image.height * 3),
        "cannot preprocess an empty or inconsistent {}x{} image", image.width, image.height);
  const CanvasPlan plan = plan_canvas(image.width, image.height, tile_size, max_tiles);
  const RgbImage resized = pil_resize_bilinear(image, plan.resized_width, plan.resized_height);
  RgbImage canvas;
  canvas.width = plan.tiles_w * tile_size;
  canvas.height = plan.tiles_h * tile_size;
  canvas.pixels.assign(static_cast<size_t>(canvas.width * canvas.height * 3), 0);
  const size_t row = static_cast<size_t>(resized.width) * 3;
  for (int64_t y = 0; y < resized.height; ++y) {
    std::memcpy(canvas.pixels.data() + static_cast<size_t>(y * canvas.width * 3), resized.pixels.data() + y * row, row);
  }
  return canvas;
}

ImageTiles preprocess_image(const RgbImage& image, int64_t tile_size, int64_t max_tiles) {
  static const NormalizeTable table;
  const RgbImage canvas = resize_and_pad(image, tile_size, max_tiles);
  ImageTiles tiles;
  tiles.tile_size = tile_size;
  tiles.tiles_w = canvas.width / tile_size;
  tiles.tiles_h = canvas.height / tile_size;
  const size_t T = static_cast<size_t>(tile_size);
  tiles.pixels.resize(static_cast<size_t>(tiles.tiles_h * tiles.tiles_w) * 3 * T * T);
  float* out = tiles.pixels.data();
  for (int64_t r = 0; r < tiles.tiles_h; ++r) {
    for (int64_t c = 0; c < tiles.tiles_w; ++c) {
      for (int ch = 0; ch < 3; ++ch) {
        for (size_t y = 0; y < T; ++y) {
          const uint8_t* src = canvas.pixels.data() + ((r * T + y) * canvas.width + c * T) * 3 + ch;
          for (size_t x = 0; x < T; ++x) *out++ = table.value[ch][src[3 * x]];
        }
      }
    }
  }
  return tiles;
}

}  // namespace llama3::vision

// Meta's image transform (image_preprocess.h) against tests/reference/mllama_image.py (Pillow +
// torch, as llama-models runs it): the canvas chosen, the uint8 resized and padded canvas bit for
// bit, and the normalized tiles, at tile size 560 (the 11B model) and 56 (the tests' small
// model), 4 tiles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "vision/image_decode.h"
#include "vision/image_fixtures.h"
#include "vision/image_preprocess.h"
#include "vision/pil_resize.h"

namespace llama3::vision {
namespace {

using testing::image_fixtures;
using testing::read_bytes;

using Pairs = std::vector<std::pair<int64_t, int64_t>>;

TEST(ImagePreprocess, SupportedCanvasesAreInHuggingFacesOrder) {
  EXPECT_EQ(supported_canvases(4), (Pairs{{1, 1}, {1, 2}, {1, 3}, {1, 4}, {2, 1}, {2, 2}, {3, 1}, {4, 1}}));
  EXPECT_EQ(supported_canvases(1), (Pairs{{1, 1}}));
  EXPECT_EQ(supported_canvases(6).size(), 14u);  // 6 + 3 + 2 + 1 + 1 + 1
  // HF's aspect_ratio_id: 1 + the index of (tiles_h, tiles_w).
  EXPECT_EQ(hf_aspect_ratio_id(1, 1, 4), 1);
  EXPECT_EQ(hf_aspect_ratio_id(1, 4, 4), 4);
  EXPECT_EQ(hf_aspect_ratio_id(2, 1, 4), 5);
  EXPECT_EQ(hf_aspect_ratio_id(2, 2, 4), 6);
  EXPECT_EQ(hf_aspect_ratio_id(4, 1, 4), 8);
  EXPECT_THROW(hf_aspect_ratio_id(2, 3, 4), Error);
}

// A few of Meta's choices worked by hand (the fixtures check many more against the reference).
TEST(ImagePreprocess, PlansFollowMetasRules) {
  auto plan = [](int64_t w, int64_t h, int64_t t) {
    const CanvasPlan p = plan_canvas(w, h, t, 4);
    return std::vector<int64_t>{p.tiles_h, p.tiles_w, p.resized_width, p.resized_height};
  };
  // Scales >= 1 exist: the smallest (1.12, for 1x2 and 2x2 tiles down x across) and the least
  // area; the image is not resized (its height 1000 fits 1120) but padded.
  EXPECT_EQ(plan(300, 1000, 560), (std::vector<int64_t>{2, 1, 300, 1000}));
  // All scales < 1: the largest (0.56, 2x2), and a downscale to fill it.
  EXPECT_EQ(plan(2000, 2000, 560), (std::vector<int64_t>{2, 2, 1120, 1120}));
  // Small images are upscaled, but only up to one tile.
  EXPECT_EQ(plan(1, 1, 560), (std::vector<int64_t>{1, 1, 560, 560}));
  EXPECT_EQ(plan(100, 50, 560), (std::vector<int64_t>{1, 1, 560, 280}));
  EXPECT_EQ(plan(100, 50, 56), (std::vector<int64_t>{1, 2, 100, 50}));
}

TEST(ImagePreprocess, PlansMatchTheReference) {
  for (const auto& ref : image_fixtures().preprocess) {
    SCOPED_TRACE(fmt::format("{} T={} max_tiles={}", ref.image, ref.tile_size, ref.max_tiles));
    const auto& image = image_fixtures().image(ref.image);
    if (ref.error) {  // Pillow refused to resize to a 0-pixel side
      EXPECT_THROW(plan_canvas(image.width, image.height, ref.tile_size, ref.max_tiles), Error);
      continue;
    }
    const CanvasPlan plan = plan_canvas(image.width, image.height, ref.tile_size, ref.max_tiles);
    EXPECT_EQ(plan.tiles_h, ref.tiles_h);
    EXPECT_EQ(plan.tiles_w, ref.tiles_w);
    EXPECT_EQ(plan.resized_width, ref.resized_width);
    EXPECT_EQ(plan.resized_height, ref.resized_height);
  }
}

// Sizes without pixels: ordinary, extremely elongated, and huge ones where get_best_fit's float32
// scales tie canvases that exact arithmetic would tell apart; tile sizes 14..560, 1..9 tiles.
TEST(ImagePreprocess, PlansMatchTheReferenceOnManySizes) {
  int float32_cases = 0, refused = 0;
  for (const auto& ref : image_fixtures().plans) {
    SCOPED_TRACE(fmt::format("{}x{} T={} max_tiles={}", ref.width, ref.height, ref.tile_size, ref.max_tiles));
    if (ref.resized_width == 0 || ref.resized_height == 0) {
      EXPECT_THROW(plan_canvas(ref.width, ref.height, ref.tile_size, ref.max_tiles), Error);
      ++refused;
      continue;
    }
    const CanvasPlan plan = plan_canvas(ref.width, ref.height, ref.tile_size, ref.max_tiles);
    EXPECT_EQ((std::vector<int64_t>{plan.tiles_h, plan.tiles_w, plan.resized_width, plan.resized_height}),
              (std::vector<int64_t>{ref.tiles_h, ref.tiles_w, ref.resized_width, ref.resized_height}));
    float32_cases += ref.float32_decides;
  }
  EXPECT_GE(float32_cases, 20);
  EXPECT_GE(refused, 100);
}

TEST(ImagePreprocess, CanvasIsBitIdenticalToPillow) {
  int compared = 0, resized = 0;
  for (const auto& ref : image_fixtures().preprocess) {
    if (ref.error) continue;
    SCOPED_TRACE(fmt::format("{} T={} max_tiles={}", ref.image, ref.tile_size, ref.max_tiles));
    const auto& fixture = image_fixtures().image(ref.image);
    const RgbImage canvas = resize_and_pad(load_image(fixture.path), ref.tile_size, ref.max_tiles);
    const std::vector<uint8_t> want = read_bytes(ref.canvas);
    ASSERT_EQ(canvas.width, ref.tiles_w * ref.tile_size);
    ASSERT_EQ(canvas.height, ref.tiles_h * ref.tile_size);
    ASSERT_EQ(canvas.pixels.size(), want.size());
    size_t differ = 0, first = want.size();
    for (size_t i = 0; i < want.size(); ++i) {
      if (canvas.pixels[i] != want[i]) {
        first = std::min(first, i);
        ++differ;
      }
    }
    EXPECT_EQ(differ, 0u) << "first at byte " << first;
    ++compared;
    resized += ref.resized_width != fixture.width || ref.resized_height != fixture.height;
  }
  EXPECT_GE(compared, 20);
  EXPECT_GE(resized, 10);  // upscales, downscales, one axis only
}

// The float32 tiles: the same arithmetic as torch (float32 division by 255, subtraction, division),
// so they are expected identical; the tolerance allows for float rounding only.
TEST(ImagePreprocess, TilesMatchTheReference) {
  int compared = 0;
  for (const auto& ref : image_fixtures().preprocess) {
    if (ref.error || ref.tiles.empty()) continue;
    SCOPED_TRACE(fmt::format("{} T={} max_tiles={}", ref.image, ref.tile_size, ref.max_tiles));
    const ImageTiles tiles =
        preprocess_image(load_image(image_fixtures().image(ref.image).path), ref.tile_size, ref.max_tiles);
    EXPECT_EQ(tiles.tiles_h, ref.tiles_h);
    EXPECT_EQ(tiles.tiles_w, ref.tiles_w);
    EXPECT_EQ(tiles.tile_size, ref.tile_size);
    const std::vector<uint8_t> bytes = read_bytes(ref.tiles);
    std::vector<float> want(bytes.size() / sizeof(float));
    std::memcpy(want.data(), bytes.data(), want.size() * sizeof(float));
    ASSERT_EQ(tiles.pixels.size(), want.size());
    double worst = 0;
    size_t exact = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::abs(tiles.pixels[i] - want[i])));
      exact += tiles.pixels[i] == want[i];
    }
    EXPECT_LE(worst, 1e-6);
    EXPECT_EQ(exact, want.size()) << "max difference " << worst;
    ++compared;
  }
  EXPECT_GE(compared, 15);
}

// Negative control: the textbook 2-tap bilinear interpolation (pixel centres at i + 0.5, no
// antialiasing, as OpenCV's INTER_LINEAR or torch's interpolate without antialias) is not
// Pillow's filter, so the exactness test above would catch a resampler that used it.
TEST(ImagePreprocess, PlainBilinearResizeDiffersFromPillows) {
  const RgbImage image = load_image(image_fixtures().image("rgb_2000x2000.png").path);
  const int64_t out = 1120;
  const double scale = static_cast<double>(image.width) / out;
  RgbImage plain{out, out, std::vector<uint8_t>(out * out * 3)};
  for (int64_t y = 0; y < out; ++y) {
    const double sy = std::clamp((y + 0.5) * scale - 0.5, 0.0, static_cast<double>(image.height - 1));
    const int64_t y0 = static_cast<int64_t>(sy), y1 = std::min(y0 + 1, image.height - 1);
    for (int64_t x = 0; x < out; ++x) {
      const double sx = std::clamp((x + 0.5) * scale - 0.5, 0.0, static_cast<double>(image.width - 1));
      const int64_t x0 = static_cast<int64_t>(sx), x1 = std::min(x0 + 1, image.width - 1);
      for (int c = 0; c < 3; ++c) {
        auto at = [&](int64_t yy, int64_t xx) { return static_cast<double>(image.pixels[(yy * image.width + xx) * 3 + c]); };
        const double fy = sy - y0, fx = sx - x0;
        const double v = (at(y0, x0) * (1 - fx) + at(y0, x1) * fx) * (1 - fy) + (at(y1, x0) * (1 - fx) + at(y1, x1) * fx) * fy;
        plain.pixels[(y * out + x) * 3 + c] = static_cast<uint8_t>(std::lround(v));
      }
    }
  }
  const RgbImage pillow = pil_resize_bilinear(image, out, out);
  size_t differ = 0;
  int worst = 0;
  for (size_t i = 0; i < plain.pixels.size(); ++i) {
    const int d = std::abs(plain.pixels[i] - pillow.pixels[i]);
    differ += d != 0;
    worst = std::max(worst, d);
  }
  EXPECT_GT(differ, plain.pixels.size() / 2) << "max difference " << worst;
  EXPECT_GT(worst, 10);
}

TEST(ImagePreprocess, RefusesBadArguments) {
  const RgbImage one{1, 1, {1, 2, 3}};
  EXPECT_THROW(preprocess_image(one, 0, 4), Error);
  EXPECT_THROW(preprocess_image(one, 560, 0), Error);
  EXPECT_THROW(preprocess_image(RgbImage{}, 560, 4), Error);
  EXPECT_THROW(preprocess_image(RgbImage{2, 2, {1, 2, 3}}, 560, 4), Error);  // pixels do not match the size
  EXPECT_THROW(pil_resize_bilinear(one, 0, 5), Error);
  try {
    plan_canvas(1, 5000, 560, 4);
    FAIL() << "accepted an image that resizes to 0 pixels";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too elongated"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace llama3::vision

// Images: decode_image on a PNG or JPEG file (the whole input; no selector byte), then, for what
// decodes, Meta's transform at the small model's setting. Properties: a rejection is a
// llama3::Error with a one-line message (libpng's and libjpeg's longjmp paths included); a decoded
// image has width * height * 3 bytes within the pixel limit and decodes again to the same pixels;
// the transform gives at most max_tiles tiles of 3 x T x T finite values, in the canvas it plans.
#include <cmath>
#include <span>
#include <string>

#include "fuzz_support.h"
#include "vision/image_decode.h"
#include "vision/image_preprocess.h"

using namespace llama3;

namespace {

// Small enough that an input declaring a large image costs milliseconds, not the harness's time
// limit; the default (89M pixels) is covered by the unit tests.
constexpr vision::ImageLimits kLimits{1 << 22};
constexpr int64_t kTileSize = 56, kMaxTiles = 4;

bool one_line(const char* message) { return std::string(message).find('\n') == std::string::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = std::as_bytes(std::span(data, size));
  vision::RgbImage image;
  try {
    image = vision::decode_image(file, "fuzz", kLimits);
  } catch (const Error& e) {
    fuzz::require(e.what()[0] != '\0' && one_line(e.what()), "rejected without a one-line message");
    return 0;
  } catch (const std::exception& e) {
    fuzz::finding(std::string("not a llama3::Error: ") + e.what());
  }
  fuzz::require(image.width > 0 && image.height > 0 && image.width * image.height <= kLimits.max_pixels,
                "decoded size outside the limits");
  fuzz::require(image.pixels.size() == static_cast<size_t>(image.width * image.height * 3), "pixel count");
  fuzz::require(vision::decode_image(file, "fuzz", kLimits).pixels == image.pixels, "a second decode differs");

  vision::CanvasPlan plan;
  if (!fuzz::accepts([&] { plan = vision::plan_canvas(image.width, image.height, kTileSize, kMaxTiles); })) return 0;
  const vision::ImageTiles tiles = vision::preprocess_image(image, kTileSize, kMaxTiles);
  fuzz::require(tiles.tiles_h == plan.tiles_h && tiles.tiles_w == plan.tiles_w, "tiles differ from the plan");
  fuzz::require(tiles.tiles_h * tiles.tiles_w <= kMaxTiles, "more tiles than allowed");
  fuzz::require(plan.resized_width <= tiles.tiles_w * kTileSize && plan.resized_height <= tiles.tiles_h * kTileSize,
                "the resized image overflows its canvas");
  fuzz::require(tiles.pixels.size() == static_cast<size_t>(tiles.tiles_h * tiles.tiles_w * 3 * kTileSize * kTileSize),
                "tile tensor size");
  for (float v : tiles.pixels) fuzz::require(std::isfinite(v) && std::abs(v) < 3, "a normalized value out of range");
  return 0;
}

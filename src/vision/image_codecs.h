#pragma once
// The two decoders behind decode_image (image_decode.cpp picks one by the magic bytes). Each
// returns Pillow's `Image.open(f).convert("RGB")` pixels (see image_decode.h) or throws
// llama3::Error with a message that starts with "image '<name>'".
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "vision/image_decode.h"

namespace llama3::vision::detail {

RgbImage decode_png(std::span<const std::byte> file, std::string_view name, const ImageLimits& limits);
RgbImage decode_jpeg(std::span<const std::byte> file, std::string_view name, const ImageLimits& limits);

// The check both decoders make from the header, before allocating pixels.
void check_image_size(int64_t width, int64_t height, std::string_view name, const ImageLimits& limits);

}  // namespace llama3::vision::detail

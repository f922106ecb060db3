#pragma once
// Image files (PNG through libpng, JPEG through libjpeg-turbo) decoded to 8-bit RGB exactly as
// the Llama 3.2 Vision reference pipeline sees them: Meta's llama-models opens the bytes with
// Pillow and calls `image.convert("RGB")` (models/llama3/chat_format.py), so every pixel here is
// the pixel Pillow 9.4 gives after that call:
//  - alpha (RGBA, grey+alpha, a tRNS chunk) is dropped, not composited: convert("RGB") keeps the
//    colour channels as stored. (Hugging Face's MllamaImageProcessor.convert_to_rgb composites
//    onto white instead, and Meta's Llama 4 code pastes RGBA onto white; Meta's Llama 3 path,
//    which this model's weights were trained and evaluated with, does neither.)
//  - palette: looked up in PLTE; an index past the palette's end reads Pillow's default
//    greyscale ramp (i, i, i).
//  - 1/2/4-bit grey is scaled to 0..255; 16-bit RGB(A) and grey+alpha keep the high byte;
//    16-bit grey becomes Pillow's 32-bit "I" mode, whose conversion to RGB clips at 255 (so most
//    of a 16-bit grey image is white: faithful to the reference, not to the picture).
//  - gAMA, iCCP, sRGB and EXIF orientation are ignored, as Pillow's open + convert ignores them.
//  - JPEG: libjpeg's default decoding (islow IDCT, fancy upsampling) to RGB or grey; 4-channel
//    CMYK/YCCK is decoded to CMYK, read with Adobe's inverted polarity and converted with
//    Pillow's formula (r = 255-k - (255-k)*c/255, rounded as Pillow rounds).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace llama3::vision {

struct RgbImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // row-major RGB8: [height][width][3]
};

struct ImageLimits {
  // Pillow's default decompression-bomb threshold (Image.MAX_IMAGE_PIXELS). Checked against the
  // file's header before any pixel memory is allocated.
  int64_t max_pixels = 89478485;
};

// Decodes a PNG or JPEG file held in memory, chosen by its magic bytes. `name` only names the
// file in error messages. Throws llama3::Error (one line naming the file) on anything else:
// another or no format, a zero-size image, more pixels than `limits` allow, truncated or corrupt
// data. libpng and libjpeg print nothing; their messages go into the exception's text.
RgbImage decode_image(std::span<const std::byte> file, std::string_view name, const ImageLimits& limits = {});

// Reads `path` and decodes it.
RgbImage load_image(const std::filesystem::path& path, const ImageLimits& limits = {});

}  // namespace llama3::vision

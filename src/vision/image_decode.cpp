#include "vision/image_decode.h"

#include <array>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/file_io.h"
#include "vision/image_codecs.h"

namespace llama3::vision {

namespace {

bool starts_with(std::span<const std::byte> file, std::string_view magic, size_t offset = 0) {
  return file.size() >= offset + magic.size() && std::memcmp(file.data() + offset, magic.data(), magic.size()) == 0;
}

// Formats people may hand us by mistake, named so the error says what the file is.
const char* other_format(std::span<const std::byte> file) {
  if (starts_with(file, "GIF87a") || starts_with(file, "GIF89a")) return "GIF";
  if (starts_with(file, "RIFF") && starts_with(file, "WEBP", 8)) return "WebP";
  if (starts_with(file, "BM")) return "BMP";
  if (starts_with(file, std::string_view("II*\0", 4)) || starts_with(file, std::string_view("MM\0*", 4))) return "TIFF";
  if (starts_with(file, "ftypavif", 4) || starts_with(file, "ftypheic", 4)) return "AVIF/HEIC";
  return nullptr;
}

}  // namespace

namespace detail {

void check_image_size(int64_t width, int64_t height, std::string_view name, const ImageLimits& limits) {
  check(width > 0 && height > 0, "image '{}' has zero size ({}x{})", name, width, height);
  // Both factors fit in 32 bits (PNG and JPEG headers), so the product cannot overflow.
  const int64_t pixels = width * height;
  check(pixels <= limits.max_pixels, "image '{}' is {}x{} = {} pixels; the limit is {}", name, width, height, pixels,
        limits.max_pixels);
}

}  // namespace detail

RgbImage decode_image(std::span<const std::byte> file, std::string_view name, const ImageLimits& limits) {
  check(limits.max_pixels > 0, "image '{}': the pixel limit must be positive, not {}", name, limits.max_pixels);
  check(!file.empty(), "image '{}' is empty (0 bytes)", name);
  if (starts_with(file, "\x89PNG\r\n\x1a\n")) return detail::decode_png(file, name, limits);
  if (starts_with(file, "\xff\xd8\xff")) return detail::decode_jpeg(file, name, limits);
  if (const char* format = other_format(file)) fail("image '{}' is a {} file; only PNG and JPEG are supported", name, format);
  std::string head;
  for (size_t i = 0; i < std::min<size_t>(file.size(), 8); ++i) head += fmt::format("{:02x}", static_cast<unsigned>(file[i]));
  fail("image '{}' is not a PNG or JPEG file (it starts with bytes {})", name, head);
}

RgbImage load_image(const std::filesystem::path& path, const ImageLimits& limits) {
  const std::string bytes = read_file(path, "image");
  return decode_image(std::as_bytes(std::span(bytes.data(), bytes.size())), path.string(), limits);
}

}  // namespace llama3::vision

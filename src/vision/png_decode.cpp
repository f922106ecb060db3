// PNG through libpng, to the pixels Pillow 9.4's PngImagePlugin + convert("RGB") produce.
//
// libpng reports errors by longjmp. The rule that keeps that safe in C++: the functions that call
// setjmp (read_header, read_rows) hold no object with a destructor and call only libpng and plain
// functions, and all state the callbacks touch lives in PngReader, plain data owned by
// decode_png's frame, which the jump never leaves. Memory (row buffers, the output) is allocated
// by decode_png between the two protected phases.
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "vision/image_codecs.h"

namespace llama3::vision::detail {

namespace {

struct PngReader {
  const png_byte* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  bool ran_out = false;      // the file ended before libpng was done
  char error[256] = {};      // libpng's error message
  char warning[256] = {};    // the first warning, kept to explain an error that follows it
};

void on_error(png_structp png, png_const_charp message) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->error, sizeof r->error, "%s", message);
  png_longjmp(png, 1);
}

// Warnings (benign errors, a bad CRC in an ancillary chunk is not one: see decode_png) do not stop
// decoding, as they do not stop Pillow; nothing is printed.
void on_warning(png_structp png, png_const_charp message) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  if (r->warning[0] == '\0') std::snprintf(r->warning, sizeof r->warning, "%s", message);
}

void on_read(png_structp png, png_bytep out, size_t count) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (count > r->size - r->pos) {
    r->ran_out = true;
    png_error(png, "the file ends early");
  }
  std::memcpy(out, r->data + r->pos, count);
  r->pos += count;
}

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  // Pillow's palette: PLTE's entries, then its default greyscale ramp for indices past the end.
  uint8_t palette[256][3] = {};
};

// Phase 1: the signature and every chunk up to the first IDAT.
int read_header(png_structp png, png_infop info, PngHeader* h) {
  if (setjmp(png_jmpbuf(png))) return 0;
  png_read_info(png, info);
  int filter = 0, compression = 0;
  png_get_IHDR(png, info, &h->width, &h->height, &h->bit_depth, &h->color_type, &h->interlace, &compression, &filter);
  for (int i = 0; i < 256; ++i) h->palette[i][0] = h->palette[i][1] = h->palette[i][2] = static_cast<uint8_t>(i);
  png_colorp plte = nullptr;
  int entries = 0;
  if (png_get_PLTE(png, info, &plte, &entries) == PNG_INFO_PLTE) {
    for (int i = 0; i < std::min(entries, 256); ++i) {
      h->palette[i][0] = plte[i].red;
      h->palette[i][1] = plte[i].green;
      h->palette[i][2] = plte[i].blue;
    }
  }
  return 1;
}

int channels_of(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;  // palette indices
  }
}

// One row of libpng's samples (bit depths below 8 unpacked to a byte each, 16-bit samples
// big-endian) to RGB the way Pillow's unpackers and convert("RGB") do it.
void row_to_rgb(const uint8_t* in, uint8_t* out, size_t width, const PngHeader& h) {
  const bool wide = h.bit_depth == 16;
  switch (h.color_type) {
    case PNG_COLOR_TYPE_GRAY:
      for (size_t x = 0; x < width; ++x) {
        int v = 0;
        switch (h.bit_depth) {
          case 1: v = in[x] ? 255 : 0; break;  // mode "1"
          case 2: v = in[x] * 0x55; break;     // rawmode "L;2"
          case 4: v = in[x] * 0x11; break;     // rawmode "L;4"
          case 8: v = in[x]; break;
          default: v = std::min(in[2 * x] << 8 | in[2 * x + 1], 255);  // mode "I", clipped by i2rgb
        }
        out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = static_cast<uint8_t>(v);
      }
      break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:  // "LA", or "LA;16B": the grey sample's high byte
      for (size_t x = 0; x < width; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[(wide ? 4 : 2) * x];
      break;
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {  // alpha dropped; 16-bit: each sample's high byte
      const size_t step = static_cast<size_t>(channels_of(h.color_type)) * (wide ? 2 : 1);
      for (size_t x = 0; x < width; ++x)
        for (size_t c = 0; c < 3; ++c) out[3 * x + c] = in[step * x + c * (wide ? 2 : 1)];
      break;
    }
    default:  // palette
      for (size_t x = 0; x < width; ++x) std::memcpy(out + 3 * x, h.palette[in[x]], 3);
  }
}

// Phase 2: the pixels. Non-interlaced images go row by row through `row` into `out`; interlaced
// ones need every row at once (Adam7's passes revisit them), in `whole`, converted by the caller.
int read_rows(png_structp png, png_infop info, const PngHeader* h, size_t row_bytes, uint8_t* row, uint8_t* whole,
              uint8_t* out) {
  if (setjmp(png_jmpbuf(png))) return 0;
  if (h->bit_depth < 8) png_set_packing(png);
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != row_bytes) png_error(png, "unexpected row size");
  for (int pass = 0; pass < passes; ++pass) {
    for (png_uint_32 y = 0; y < h->height; ++y) {
      if (whole != nullptr) {
        png_read_row(png, whole + y * row_bytes, nullptr);
      } else {
        png_read_row(png, row, nullptr);
        row_to_rgb(row, out + static_cast<size_t>(y) * h->width * 3, h->width, *h);
      }
    }
  }
  return 1;
}

// Owns libpng's structures; declared in decode_png, outside the jumps' reach.
class PngHandle {
 public:
  explicit PngHandle(PngReader* reader) {
    png_ = png_create_read_struct(PNG_LIBPNG_VER_STRING, reader, on_error, on_warning);
    if (png_ != nullptr) info_ = png_create_info_struct(png_);
  }
  ~PngHandle() { png_destroy_read_struct(&png_, info_ != nullptr ? &info_ : nullptr, nullptr); }
  PngHandle(const PngHandle&) = delete;
  PngHandle& operator=(const PngHandle&) = delete;
  png_structp png() const { return png_; }
  png_infop info() const { return info_; }

 private:
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
};

[[noreturn]] void fail_png(const PngReader& r, std::string_view name) {
  if (r.ran_out) fail("image '{}': truncated PNG file (it ends before the image data does)", name);
  if (r.warning[0] != '\0') fail("image '{}': corrupt PNG file ({}; {})", name, r.error, r.warning);
  fail("image '{}': corrupt PNG file ({})", name, r.error);
}

uint32_t read_be32(const png_byte* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

}  // namespace

RgbImage decode_png(std::span<const std::byte> file, std::string_view name, const ImageLimits& limits) {
  PngReader reader;
  reader.data = reinterpret_cast<const png_byte*>(file.data());
  reader.size = file.size();
  // A zero width or height is named as such (libpng would only say "Invalid IHDR data").
  if (file.size() >= 8 + 8 + 8 && std::memcmp(reader.data + 12, "IHDR", 4) == 0) {
    const uint32_t width = read_be32(reader.data + 16), height = read_be32(reader.data + 20);
    check(width != 0 && height != 0, "image '{}' has zero size ({}x{})", name, width, height);
  }
  PngHandle handle(&reader);
  check(handle.png() != nullptr && handle.info() != nullptr, "image '{}': out of memory starting libpng", name);
  png_set_read_fn(handle.png(), &reader, on_read);
  // Our pixel limit replaces libpng's default cap of 1e6 per side, so that a wide but small
  // image decodes as it does in Pillow and a large one is refused with our message.
  png_set_user_limits(handle.png(), 0x7fffffff, 0x7fffffff);
  // A corrupt chunk is an error, ancillary or not (libpng's default only warns for those).
  png_set_crc_action(handle.png(), PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);

  PngHeader header;
  if (!read_header(handle.png(), handle.info(), &header)) fail_png(reader, name);
  check_image_size(header.width, header.height, name, limits);

  const size_t width = header.width, height = header.height;
  const size_t row_bytes = width * static_cast<size_t>(channels_of(header.color_type)) * (header.bit_depth == 16 ? 2 : 1);
  RgbImage image;
  image.width = static_cast<int64_t>(width);
  image.height = static_cast<int64_t>(height);
  image.pixels.resize(width * height * 3);
  const bool interlaced = header.interlace != PNG_INTERLACE_NONE;
  std::vector<uint8_t> raw(interlaced ? row_bytes * height : row_bytes);
  if (!read_rows(handle.png(), handle.info(), &header, row_bytes, raw.data(), interlaced ? raw.data() : nullptr,
                 image.pixels.data())) {
    fail_png(reader, name);
  }
  if (interlaced) {
    for (size_t y = 0; y < height; ++y) row_to_rgb(raw.data() + y * row_bytes, image.pixels.data() + y * width * 3, width, header);
  }
  // The chunks after the image data (png_read_end) are not read: the pixels are complete, and
  // Pillow does not need them either.
  return image;
}

}  // namespace llama3::vision::detail

// decode_image against Pillow (the reference pipeline's decoder: Image.open + convert("RGB")) on
// PNG and JPEG files of every mode, and on bad input: one-line llama3::Errors, nothing on stderr.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "vision/image_decode.h"
#include "vision/image_fixtures.h"

namespace llama3::vision {
namespace {

using testing::image_fixtures;
using testing::read_bytes;
using testing::StderrCapture;

std::span<const std::byte> as_bytes(const std::vector<uint8_t>& v) { return std::as_bytes(std::span(v)); }

// Where two RGB images first differ, or "" when they are identical.
std::string first_difference(const RgbImage& got, const std::vector<uint8_t>& want, int64_t width, int64_t height) {
  if (got.width != width || got.height != height) {
    return fmt::format("size {}x{}, want {}x{}", got.width, got.height, width, height);
  }
  if (got.pixels.size() != want.size()) return fmt::format("{} bytes, want {}", got.pixels.size(), want.size());
  int64_t count = 0, first = -1;
  for (size_t i = 0; i < want.size(); ++i) {
    if (got.pixels[i] != want[i]) {
      if (first < 0) first = static_cast<int64_t>(i);
      ++count;
    }
  }
  if (count == 0) return "";
  const int64_t pixel = first / 3;
  return fmt::format("{} bytes differ; first at x={} y={} channel {}: {} vs Pillow's {}", count, pixel % width,
                     pixel / width, first % 3, got.pixels[first], want[first]);
}

TEST(ImageDecode, MatchesPillowOnEveryTestImage) {
  const auto& fixtures = image_fixtures();
  ASSERT_GT(fixtures.images.size(), 30u);
  for (const auto& image : fixtures.images) {
    SCOPED_TRACE(image.file);
    const RgbImage decoded = load_image(image.path);
    EXPECT_EQ(first_difference(decoded, read_bytes(image.rgb), image.width, image.height), "");
  }
}

// RGBA, grey+alpha and tRNS keep their colour samples (Meta's convert("RGB")), they are not
// composited onto a background as Hugging Face's convert_to_rgb does; 16-bit samples keep their
// high byte. rgba.png, rgb16.png, rgba16.png and interlaced.png all hold the same picture.
TEST(ImageDecode, AlphaIsDroppedAndSixteenBitKeepsTheHighByte) {
  const auto& fixtures = image_fixtures();
  const RgbImage plain = load_image(fixtures.image("interlaced.png").path);
  for (const char* file : {"rgba.png", "rgb16.png", "rgba16.png", "trns_gama.png"}) {
    SCOPED_TRACE(file);
    EXPECT_EQ(load_image(fixtures.image(file).path).pixels, plain.pixels);
  }
  // A composite onto white would lighten every pixel that is not opaque: the alpha here varies.
  const RgbImage grey_alpha = load_image(fixtures.image("grey_alpha.png").path);
  const RgbImage grey = load_image(fixtures.image("grey.png").path);
  EXPECT_EQ(grey_alpha.pixels, grey.pixels);
}

// Pillow's 16-bit grey is mode "I", and its conversion to RGB clips at 255.
TEST(ImageDecode, SixteenBitGreyClipsLikePillow) {
  const RgbImage image = load_image(image_fixtures().image("grey16.png").path);
  int64_t white = 0;
  for (uint8_t v : image.pixels) white += v == 255;
  EXPECT_GT(white, static_cast<int64_t>(image.pixels.size()) / 2);
}

// ---- Bad input.

uint32_t crc32(std::span<const uint8_t> bytes) {
  uint32_t crc = 0xffffffffu;
  for (uint8_t b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void put_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  std::vector<uint8_t> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  put_be32(out, crc32(body));
}

// A PNG whose IHDR (with a correct CRC) declares width x height RGB8, followed by a few bytes of
// IDAT that are not a valid image: decoding them would fail, so an error about the size shows
// the header was judged first.
std::vector<uint8_t> png_declaring(uint32_t width, uint32_t height) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", {1, 2, 3, 4});
  put_chunk(png, "IEND", {});
  return png;
}

// decode_image must throw a llama3::Error whose message is one line containing `expected`, and
// print nothing.
void expect_refused(const std::vector<uint8_t>& bytes, const std::string& expected, const std::string& name = "x.img",
                    const ImageLimits& limits = {}) {
  StderrCapture capture;
  std::string message;
  try {
    decode_image(as_bytes(bytes), name, limits);
    ADD_FAILURE() << "accepted; expected an error with: " << expected;
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(expected), std::string::npos) << message;
  EXPECT_NE(message.find(name), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(capture.text(), "");
}

TEST(ImageDecode, RefusesEmptyAndUnknownFiles) {
  expect_refused({}, "is empty");
  std::mt19937 rng(7);
  std::vector<uint8_t> noise(4096);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  noise[0] = 0x42;  // not a magic byte of anything named
  noise[1] = 0x00;
  expect_refused(noise, "is not a PNG or JPEG file");
  expect_refused({'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0}, "is a GIF file; only PNG and JPEG are supported");
  // The right magic bytes and noise after them.
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  png.insert(png.end(), noise.begin(), noise.end());
  expect_refused(png, "corrupt PNG file");
  std::vector<uint8_t> jpeg = {0xff, 0xd8, 0xff};
  jpeg.insert(jpeg.end(), noise.begin(), noise.end());
  expect_refused(jpeg, "corrupt JPEG file");
}

TEST(ImageDecode, RefusesTruncatedFiles) {
  const auto& fixtures = image_fixtures();
  for (const char* file : {"rgb_2000x2000.png", "interlaced.png", "rgb_203x157.jpg", "progressive.jpg"}) {
    SCOPED_TRACE(file);
    const std::vector<uint8_t> whole = read_bytes(fixtures.image(file).path);
    const bool png = whole[0] == 0x89;
    for (size_t keep : {whole.size() / 2, whole.size() - 40, size_t{30}}) {
      SCOPED_TRACE(keep);
      expect_refused({whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep)},
                     png ? "truncated PNG file" : "truncated JPEG file", file);
    }
  }
}

TEST(ImageDecode, RefusesTooManyPixelsFromTheHeader) {
  expect_refused(png_declaring(20000, 20000), "image 'huge.png' is 20000x20000 = 400000000 pixels; the limit is 89478485",
                 "huge.png");
  // Beyond libpng's own default cap of 1e6 per side: still our message.
  expect_refused(png_declaring(2000000000, 1000), "is 2000000000x1000 = 2000000000000 pixels", "wide.png");
  // A JPEG's SOF0 patched to say 20000x20000.
  std::vector<uint8_t> jpeg = read_bytes(image_fixtures().image("rgb_203x157.jpg").path);
  bool patched = false;
  for (size_t i = 0; i + 9 < jpeg.size() && !patched; ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      for (size_t k : {i + 5, i + 7}) {  // height, then width, big-endian
        jpeg[k] = 20000 >> 8;
        jpeg[k + 1] = 20000 & 0xff;
      }
      patched = true;
    }
  }
  ASSERT_TRUE(patched);
  expect_refused(jpeg, "image 'huge.jpg' is 20000x20000 = 400000000 pixels; the limit is 89478485", "huge.jpg");
  // A custom limit.
  expect_refused(read_bytes(image_fixtures().image("rgb_203x157.jpg").path), "is 203x157 = 31871 pixels; the limit is 100",
                 "small.jpg", ImageLimits{100});
}

TEST(ImageDecode, RefusesZeroSize) {
  expect_refused(png_declaring(0, 5), "has zero size (0x5)");
  std::vector<uint8_t> jpeg = read_bytes(image_fixtures().image("rgb_203x157.jpg").path);
  for (size_t i = 0; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      jpeg[i + 7] = jpeg[i + 8] = 0;  // width 0
      break;
    }
  }
  expect_refused(jpeg, "has zero size");
}

TEST(ImageDecode, RefusesCorruptCrc) {
  std::vector<uint8_t> png = read_bytes(image_fixtures().image("grey.png").path);
  png[8 + 8 + 13] ^= 0x01;  // IHDR's CRC
  expect_refused(png, "corrupt PNG file (IHDR: CRC error)");
  // An IDAT's CRC (the last 4 bytes before the IEND chunk of a Pillow file with one IDAT).
  png = read_bytes(image_fixtures().image("grey.png").path);
  png[png.size() - 12 - 1] ^= 0x80;
  expect_refused(png, "CRC error");
}

TEST(ImageDecode, LoadImageNamesAMissingFile) {
  try {
    load_image("/nonexistent/picture.png");
    FAIL() << "accepted a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/picture.png"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace llama3::vision

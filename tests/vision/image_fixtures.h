#pragma once
// Test images and what Pillow and Meta's transform make of them, written by
// tests/reference/mllama_image.py (`fixtures`): every image, its Pillow decoding (.rgb), and for
// the RGB PNGs the reference canvas (.canvas, uint8) and tiles (.tiles, float32) at tile sizes
// 560 and 56 with 4 tiles. Generated once into the build tree per version of the script: ctest
// runs each test in its own process, so the first generates while the others wait on a lock.
// Header-only: tests/CMakeLists.txt compiles only the *_test.cpp files of this folder.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.h"

namespace llama3::testing {

namespace fs = std::filesystem;

struct FixtureImage {
  std::string file;
  int64_t width = 0, height = 0;
  fs::path path, rgb;  // the image; Pillow's `open(...).convert("RGB")` bytes
};

struct FixturePreprocess {
  std::string image;
  int64_t tile_size = 0, max_tiles = 0;
  std::optional<std::string> error;  // Pillow refused the resize
  int64_t tiles_h = 0, tiles_w = 0, resized_width = 0, resized_height = 0;
  fs::path canvas;  // uint8 HWC, tiles_w*T x tiles_h*T
  fs::path tiles;   // float32 [n][3][T][T]; empty when not written (large tiles of some images)
};

// Steps 1-3 of the transform for a size without pixels.
struct FixturePlan {
  int64_t width = 0, height = 0, tile_size = 0, max_tiles = 0;
  int64_t tiles_h = 0, tiles_w = 0, resized_width = 0, resized_height = 0;  // a 0 side: Pillow refuses
  bool float32_decides = false;  // exact arithmetic would pick another canvas
};

struct ImageFixtures {
  fs::path dir;
  std::vector<FixtureImage> images;
  std::vector<FixturePreprocess> preprocess;
  std::vector<FixturePlan> plans;

  const FixtureImage& image(const std::string& file) const {
    for (const auto& i : images)
      if (i.file == file) return i;
    throw std::runtime_error("no fixture image " + file);
  }
};

inline std::vector<uint8_t> read_bytes(const fs::path& path) {
  const std::string text = read_text(path);
  return {text.begin(), text.end()};
}

namespace detail {

inline ImageFixtures read_fixtures(const fs::path& dir) {
  const auto j = nlohmann::json::parse(read_text(dir / "manifest.json"));
  ImageFixtures f;
  f.dir = dir;
  for (const auto& i : j.at("images")) {
    f.images.push_back({i.at("file").get<std::string>(), i.at("width").get<int64_t>(), i.at("height").get<int64_t>(),
                        dir / i.at("file").get<std::string>(), dir / i.at("rgb").get<std::string>()});
  }
  for (const auto& p : j.at("preprocess")) {
    FixturePreprocess e;
    e.image = p.at("image").get<std::string>();
    e.tile_size = p.at("tile_size").get<int64_t>();
    e.max_tiles = p.at("max_tiles").get<int64_t>();
    if (p.contains("error")) {
      e.error = p.at("error").get<std::string>();
    } else {
      e.tiles_h = p.at("tiles_h").get<int64_t>();
      e.tiles_w = p.at("tiles_w").get<int64_t>();
      e.resized_width = p.at("resized").at(0).get<int64_t>();
      e.resized_height = p.at("resized").at(1).get<int64_t>();
      e.canvas = dir / p.at("canvas").get<std::string>();
      if (p.contains("tiles")) e.tiles = dir / p.at("tiles").get<std::string>();
    }
    f.preprocess.push_back(e);
  }
  for (const auto& p : j.at("plans")) {
    f.plans.push_back({p.at("size").at(0).get<int64_t>(), p.at("size").at(1).get<int64_t>(),
                       p.at("tile_size").get<int64_t>(), p.at("max_tiles").get<int64_t>(), p.at("tiles_h").get<int64_t>(),
                       p.at("tiles_w").get<int64_t>(), p.at("resized").at(0).get<int64_t>(),
                       p.at("resized").at(1).get<int64_t>(), p.at("float32_decides").get<bool>()});
  }
  return f;
}

}  // namespace detail

inline const ImageFixtures& image_fixtures() {
  static const ImageFixtures fixtures = [] {
    const fs::path script = fs::path(LLAMA3_SOURCE_DIR) / "tests" / "reference" / "mllama_image.py";
    const fs::path root = fs::path(LLAMA3_BINARY_DIR) / "test-tmp" / "vision-fixtures";
    const fs::path dir = root / fmt::format("{:016x}", fnv1a(read_text(script)));
    fs::create_directories(root);
    const FileLock lock(root / "lock");
    if (!fs::exists(dir / "manifest.json")) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(root)) {  // older versions of the fixtures
        if (e.path().filename() != "lock") fs::remove_all(e.path(), ec);
      }
      const fs::path partial = root / fmt::format("partial-{}", ::getpid());
      const CommandResult r = run_command(std::string(LLAMA3_PYTHON) + " " + shell_quote(script.string()) +
                                          " fixtures " + shell_quote(partial.string()));
      if (r.exit_code != 0) throw std::runtime_error("mllama_image.py fixtures failed:\n" + r.err);
      fs::rename(partial, dir);
    }
    return detail::read_fixtures(dir);
  }();
  return fixtures;
}

// Whatever this process writes to file descriptor 2 while the object lives (libpng and libjpeg
// would print there by default).
class StderrCapture {
 public:
  StderrCapture() : file_(std::tmpfile()) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    ::dup2(::fileno(file_), 2);
  }
  ~StderrCapture() {
    restore();
    std::fclose(file_);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    for (int c; (c = std::fgetc(file_)) != EOF;) out += static_cast<char>(c);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::FILE* file_;
  int saved_ = -1;
};

}  // namespace llama3::testing

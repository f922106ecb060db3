#pragma once
// Small random Llama 3.2 Vision models written by tests/reference/make_mllama_model.py (Meta and
// Hugging Face layouts, test images, the float64 reference's answers), generated once per build
// tree and reused by every test process (ctest runs one per test), behind a lock file.
// Header-only (tests/CMakeLists.txt compiles only *_test.cpp files).
#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "test_support.h"

namespace llama3::testing {

struct MllamaFixture {
  std::filesystem::path dir;  // meta/, hf/, images/, expected.json
  nlohmann::json expected;
};

// The model make_mllama_model.py writes with `args` (besides --out), in a build-tree folder
// named after `name` and a hash of the arguments and the Python sources.
inline const MllamaFixture& mllama_fixture(const std::string& name, const std::string& args = "") {
  static std::map<std::string, MllamaFixture> made;
  if (auto it = made.find(name + args); it != made.end()) return it->second;
  namespace fs = std::filesystem;
  const fs::path ref = fs::path(LLAMA3_SOURCE_DIR) / "tests" / "reference";
  uint64_t h = fnv1a(args);
  for (const char* source : {"make_mllama_model.py", "mllama_reference.py", "mllama_image.py", "model_files.py",
                             "llama_reference.py"}) {
    h = fnv1a(read_text(ref / source), h);
  }
  const fs::path root = fs::path(LLAMA3_BINARY_DIR) / "test-tmp" / "reference-models";
  const fs::path dir = root / fmt::format("{}-{:016x}", name, h);
  fs::create_directories(root);
  const FileLock lock(root / (name + ".lock"));
  if (!fs::exists(dir / "expected.json")) {
    const fs::path partial = root / fmt::format("{}.partial-{}", name, ::getpid());
    fs::remove_all(partial);
    const auto r = run_command(fmt::format("{} {} --out {} {}", LLAMA3_PYTHON,
                                           shell_quote((ref / "make_mllama_model.py").string()),
                                           shell_quote(partial.string()), args));
    if (r.exit_code != 0) throw std::runtime_error("make_mllama_model.py failed:\n" + r.err);
    fs::rename(partial, dir);
  }
  return made.emplace(name + args, MllamaFixture{dir, nlohmann::json::parse(read_text(dir / "expected.json"))})
      .first->second;
}

// The default small model: vocabulary 512, the script's four prompts (0 to 3 images).
inline const MllamaFixture& small_mllama() { return mllama_fixture("mllama"); }

// A model with Llama 3's whole vocabulary (128256, image token 128256), so text prompts run
// through the real tokenizer: tiny widths, two images; the reference answers one prompt.
inline const MllamaFixture& vocab_mllama() {
  return mllama_fixture(
      "mllama-vocab",
      "--config '{\"vocab_size\":128256,\"dim\":64,\"n_heads\":4,\"n_kv_heads\":2,\"ffn_dim\":128,"
      "\"vision_width\":32,\"vision_heads\":2,\"vision_layers\":2,\"vision_intermediate_layers\":[0,1],"
      "\"vision_ffn\":64}' --image wide.png=150x60:11 --image tall.jpg=40x130:12 --prompt '128000,128256|wide.png'");
}

}  // namespace llama3::testing

#pragma once
// The weight cache: the model's matrices in the kernels' formats and layout, written once the
// first time a model runs in a mode, memory-mapped on later runs (no conversion, no copy).
// The file is a GGUF (io/gguf_writer.h) holding the converted matrices (packed blocks as I8
// byte tensors, bf16 as BF16), the norms, the config and the key it was built for; tensors are
// 64-byte aligned so the kernels read them in place.
//
// Where: next to a checkpoint, in a folder named after the mesh and mode as the original demo
// keeps `$LLAMA_DIR/N150` (`<checkpoint>/N150/performance/weights.gguf`; for a .gguf source
// `<its folder>/N150/performance/<stem>.gguf`); for random weights, or when that folder is not
// writable, under `$LLAMA3_CACHE` or `~/.cache/llama3`.
// The key: the source files' identity (name, size, modification time, a hash of their first
// MiB: the headers), or the preset and seed of random weights; the precision map, the layer
// count, the mesh and share, and the cache format version. A cache whose key differs, or that
// cannot be read, is rebuilt with a one-line warning, never used; one that differs only in its
// mesh or share was moved from another mesh's folder, which is an error naming both.
#include <filesystem>
#include <optional>
#include <string>

#include "model/checkpoint_loader.h"

namespace llama3::model {

struct CacheSource {
  std::optional<std::filesystem::path> checkpoint;  // unset: random weights
  std::string preset;                               // random weights
  uint64_t seed = 0;                                // random weights
  std::optional<int64_t> layers;
  std::string mesh = "N150";
  Share share;  // a rank of a mesh caches its own share, in a folder of its own
};

// The key's text (canonical JSON) and where its file lives.
struct CacheLocation {
  std::string key;
  std::filesystem::path path;
  std::filesystem::path fallback_path;  // under $LLAMA3_CACHE / ~/.cache/llama3
};

CacheLocation cache_location(const CacheSource& source, const PrecisionMap& precision);

// The weights from the cache file at `path` if its key is `key`; nullopt when there is no file.
// A file with another key or that fails to read gives nullopt and a warning in `warning`; a
// file built for another share of the same weights throws llama3::Error.
std::optional<LoadedCheckpoint> read_weight_cache(const std::filesystem::path& path, const std::string& key,
                                                  std::string& warning);

// Writes the cache atomically (temporary name, then rename). Throws llama3::Error when it cannot.
void write_weight_cache(const std::filesystem::path& path, const std::string& key, const LoadedCheckpoint& model);

}  // namespace llama3::model

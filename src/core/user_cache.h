#pragma once
// The per-user cache folder ($LLAMA3_CACHE, else ~/.cache/llama3): URL contexts, weight caches
// of random weights or of read-only checkpoints.
#include <cstdlib>
#include <filesystem>

namespace llama3 {

inline std::filesystem::path user_cache_root() {
  if (const char* d = std::getenv("LLAMA3_CACHE"); d != nullptr && *d != '\0') return d;
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / ".cache" / "llama3";
  }
  return std::filesystem::temp_directory_path() / "llama3-cache";
}

}  // namespace llama3

#pragma once
// What identifies a checkpoint's files without reading them whole: each weight or config file's
// name, size and a hash of its first MiB (the header, which names every tensor and its offset).
// The weight cache keys on it (with modification times); the ranks of a mesh compare theirs with
// rank 0's before loading, because each rank maps its own copy of the files and a different
// copy on one machine would otherwise compute silent garbage.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace llama3::model {

struct CheckpointFile {
  std::string name;       // relative to the checkpoint folder (the file's own name for a .gguf)
  uint64_t size = 0;
  std::string head_hash;  // FNV-1a of the first MiB, hex
  int64_t mtime_ns = 0;   // not compared across machines: copies differ in it

  bool operator==(const CheckpointFile&) const = default;
};

// The files of a checkpoint folder (*.pth, *.safetensors, *.json, *.gguf), or the .gguf file
// `path` names, sorted by name.
std::vector<CheckpointFile> checkpoint_files(const std::filesystem::path& path);

// How `theirs` differs from `ours` in names, sizes or headers, in words; "" when it does not.
std::string checkpoint_difference(const std::vector<CheckpointFile>& ours, const std::vector<CheckpointFile>& theirs);

// FNV-1a, 64 bits (the cache's names and hashes).
uint64_t fnv1a(const char* data, size_t n, uint64_t h = 0xcbf29ce484222325ull);

}  // namespace llama3::model

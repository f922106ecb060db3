#include "model/checkpoint_identity.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>

namespace llama3::model {

namespace fs = std::filesystem;

namespace {

constexpr size_t kHeadHashBytes = size_t{1} << 20;

bool is_weight_or_config(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".pth" || ext == ".safetensors" || ext == ".json" || ext == ".gguf";
}

CheckpointFile identify(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string head(kHeadHashBytes, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  const auto mtime = fs::last_write_time(file).time_since_epoch();
  return {file.filename().string(), static_cast<uint64_t>(fs::file_size(file)),
          fmt::format("{:016x}", fnv1a(head.data(), head.size())),
          std::chrono::duration_cast<std::chrono::nanoseconds>(mtime).count()};
}

}  // namespace

uint64_t fnv1a(const char* data, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001b3ull;
  return h;
}

std::vector<CheckpointFile> checkpoint_files(const fs::path& path) {
  std::vector<CheckpointFile> out;
  if (fs::is_regular_file(path)) {
    out.push_back(identify(path));
    return out;
  }
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.is_regular_file() && is_weight_or_config(e.path())) paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& f : paths) out.push_back(identify(f));
  return out;
}

std::string checkpoint_difference(const std::vector<CheckpointFile>& ours, const std::vector<CheckpointFile>& theirs) {
  std::map<std::string, const CheckpointFile*> by_name;
  for (const CheckpointFile& f : theirs) by_name[f.name] = &f;
  for (const CheckpointFile& f : ours) {
    const auto it = by_name.find(f.name);
    if (it == by_name.end()) return fmt::format("{} is missing", f.name);
    if (it->second->size != f.size) return fmt::format("{} has {} bytes, not {}", f.name, it->second->size, f.size);
    if (it->second->head_hash != f.head_hash) return fmt::format("{} has another header (other tensors)", f.name);
    by_name.erase(it);
  }
  if (!by_name.empty()) return fmt::format("{} is there too", by_name.begin()->first);
  return "";
}

}  // namespace llama3::model

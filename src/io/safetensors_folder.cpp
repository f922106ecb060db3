#include "io/safetensors_folder.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/quote.h"

namespace llama3::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_index(const fs::path& path) {
  MappedFile file(path);
  const auto bytes = file.bytes();
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  json index;
  try {
    index = json::parse(text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
  check(index.is_object() && index.contains("weight_map") && index.at("weight_map").is_object(),
        "{}: expected an object with a \"weight_map\" object", path.string());
  return index;
}

// A shard must be a plain file name next to the index: "../x" or "/etc/x" would let an index
// reach outside the model folder.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// Whether `path` exists, by the error_code forms: a name the file system refuses (too long, a
// component that is not a folder, no permission) is an error naming it, not a
// std::filesystem exception (found by the fuzzer: a 300-byte shard name in an index).
bool exists_checked(const fs::path& path) {
  std::error_code ec;
  const bool found = fs::exists(path, ec);
  check(!ec, "{}: cannot be looked up: {}", path.string(), ec.message());
  return found;
}

}  // namespace

SafetensorsFolder::SafetensorsFolder(const fs::path& dir) {
  const fs::path single = dir / "model.safetensors";
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (exists_checked(index_path)) {
    const json index = read_index(index_path);
    const json& weight_map = index.at("weight_map");
    check(!weight_map.empty(), "{}: weight_map is empty", index_path.string());
    std::map<std::string, std::string> shard_of;  // tensor name -> shard file name
    std::map<std::string, size_t> shard_ids;      // shard file name -> index in shards_
    for (const auto& [tensor, shard] : weight_map.items()) {
      check(shard.is_string(), "{}: weight_map entry {} is a JSON {}, expected a file name",
            index_path.string(), quote(tensor), shard.type_name());
      const auto& file = shard.get_ref<const std::string&>();
      check(is_plain_file_name(file), "{}: weight_map entry {} names {}, not a file in the folder",
            index_path.string(), quote(tensor), quote(file));
      shard_of.emplace(tensor, file);
      if (shard_ids.count(file)) continue;
      const fs::path shard_path = dir / file;
      std::error_code ec;
      const bool found = fs::is_regular_file(shard_path, ec);
      check(found, "{}: shard {} (holding tensor {}) {}: {}", index_path.string(), quote(file), quote(tensor),
            ec == std::errc::no_such_file_or_directory ? "not found"
            : ec                                        ? ec.message()
                                                        : "is not a regular file",
            shard_path.string());
      shard_ids.emplace(file, shards_.size());
      add_shard(shard_path);
    }
    for (const auto& [tensor, file] : shard_of) {
      const SafetensorsFile& shard = *shards_[shard_ids.at(file)];
      check(shard.find(tensor) != nullptr, "{}: weight_map puts tensor {} in {}, which lacks it",
            index_path.string(), quote(tensor), shard.path().string());
    }
  } else if (exists_checked(single)) {
    add_shard(single);
  } else {
    fail("{}: no model.safetensors or model.safetensors.index.json in this folder", dir.string());
  }
}

void SafetensorsFolder::add_shard(const fs::path& path) {
  shards_.push_back(std::make_unique<SafetensorsFile>(path));
  for (const TensorInfo& t : shards_.back()->tensors()) {
    const auto [it, inserted] = index_.emplace(t.name, Located{&t, shards_.size() - 1});
    check(inserted, "tensor {} is in both {} and {}", quote(t.name),
          shards_[it->second.shard]->path().string(), shards_.back()->path().string());
  }
}

const TensorInfo* SafetensorsFolder::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.info;
}

std::vector<std::string> SafetensorsFolder::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, _] : index_) out.push_back(name);
  return out;
}

}  // namespace llama3::io

#pragma once
// The weights of a Hugging Face model folder: either one `model.safetensors`, or
// `model.safetensors.index.json` whose "weight_map" maps each tensor name to a shard file in the
// same folder. All shards stay mapped for the life of the object; find() hands out views.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors_file.h"

namespace llama3::io {

class SafetensorsFolder {
 public:
  explicit SafetensorsFolder(const std::filesystem::path& dir);  // throws Error naming the problem

  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  std::vector<std::string> names() const;               // every tensor of every shard, sorted
  size_t shard_count() const { return shards_.size(); }

 private:
  void add_shard(const std::filesystem::path& path);

  // unique_ptr keeps each shard (and the TensorInfos index_ points at) at a fixed address.
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  struct Located {
    const TensorInfo* info;
    size_t shard;  // index in shards_
  };
  std::map<std::string, Located, std::less<>> index_;
};

}  // namespace llama3::io

#pragma once
// Reader for PyTorch checkpoints written by torch.save (the zip format of torch >= 1.6): entries
// <prefix>/data.pkl (the pickled state dict), <prefix>/data/<key> (one per storage), and
// <prefix>/version, <prefix>/byteorder, ... The pickle is read by a restricted unpickler that
// never executes anything; tensor bytes stay in the memory map (see docs/FORMATS.md).
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "io/tensor_info.h"

namespace llama3::io {

class PthFile {
 public:
  explicit PthFile(const std::filesystem::path& path);  // throws Error naming file + problem

  // In the state dict's order. Tensors saved as views of one storage (tied weights, slices)
  // view the same bytes.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  const std::filesystem::path& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace llama3::io

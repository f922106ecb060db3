#pragma once
// Writes a safetensors file (8-byte little-endian header length, JSON header padded with spaces
// to a multiple of 8, then the tensors' bytes back to back). Written to a temporary name and
// renamed, so a crash never leaves a half file under the final name.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace llama3::io {

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;  // numel * dtype_size bytes, row-major
};

void write_safetensors(const std::filesystem::path& path, std::span<const TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace llama3::io

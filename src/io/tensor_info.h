#pragma once
// One tensor as stored in a checkpoint: row-major contiguous bytes inside a mapped file. The
// bytes belong to the reader that produced the TensorInfo (it keeps the file mapped); nothing is
// copied. The data pointer has no alignment guarantee beyond what the file gives.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace llama3::io {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;        // empty for a scalar
  std::span<const std::byte> data;   // exactly numel() * dtype_size(dtype) bytes

  int64_t numel() const;  // the readers check at load time that this cannot overflow
};

}  // namespace llama3::io

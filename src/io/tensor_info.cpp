#include "io/tensor_info.h"

namespace llama3::io {

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

}  // namespace llama3::io

#pragma once
// What the per-ISA integer matmul kernels (quant_matmul_avx2.cpp, quant_matmul_avx512.cpp) read
// of the quantized activations, and how many batch rows they sweep per pass. Internal to them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/activation_quant.h"

namespace llama3::kernels {

// Batch row t's bytes start at base + t * stride, in the activation_quant.h row layout:
// q (k bytes), then k/32 fp32 scales at byte `scales`, then k/32 int32 sums at byte `sums`.
struct TileInput {
  const std::byte* base;
  int64_t stride;
  int64_t scales;
  int64_t sums;

  explicit TileInput(const QuantizedActivations& x)
      : base(reinterpret_cast<const std::byte*>(x.q(0))), stride(x.row_stride()), scales(x.k()),
        sums(x.k() + 4 * x.blocks()) {}

  TileInput from_row(int64_t t) const {
    TileInput r = *this;
    r.base += t * stride;
    return r;
  }
};

inline int32_t load_i32(const std::byte* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline float load_f32(const std::byte* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// Batch rows per pass, a multiple of `tile`: their activations (~384 KiB) stay in L2 while each
// weight group is read from memory once per pass and reused from cache by every tile of it.
inline int64_t batch_rows_per_pass(const QuantizedActivations& x, int64_t tile) {
  return std::max<int64_t>(tile, (384 * 1024 / x.row_stride()) / tile * tile);
}

}  // namespace llama3::kernels

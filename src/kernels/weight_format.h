#pragma once
// How a weight matrix is stored for the kernels: bf16 rows (matmul.h) or ggml's 8-bit and 4-bit
// blocks in the row-interleaved layout of quant_pack.h (quant_matmul.h).
#include <cstdint>
#include <string_view>

namespace llama3::kernels {

enum class WeightFormat : uint8_t { BF16, Q8_0, Q4_0 };

constexpr std::string_view weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::BF16: return "BF16";
    case WeightFormat::Q8_0: return "Q8_0";
    case WeightFormat::Q4_0: return "Q4_0";
  }
  return "?";
}

}  // namespace llama3::kernels

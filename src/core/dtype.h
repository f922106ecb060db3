#pragma once
// Scalar number formats shared by the file readers and the kernels.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace llama3 {

enum class DType : uint8_t { F32, F16, BF16, I64, I32, I8, U8, BOOL };

std::string_view dtype_name(DType dtype);
size_t dtype_size(DType dtype);

// bf16 is the top half of an fp32; conversion back rounds to nearest even, as torch does.
inline float bf16_to_f32(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE half precision, written out so it works without F16C (the kernels use F16C where present).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace llama3

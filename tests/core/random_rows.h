#pragma once
// Random rows of ggml types for the block-format tests: random code bytes, with the fp16 scale
// fields (and plain elements) drawn as the test asks, since random bits there would make most
// rows infinite or NaN.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/ggml_type.h"
#include "core/quant_blocks.h"

namespace llama3::testing {

inline const std::vector<GgmlType>& dequantizable_types() {
  static const std::vector<GgmlType> types = {
      GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
      GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::Q3_K,
      GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
  return types;
}

// Byte offsets of the fp16 fields in one block of `type` (for F16: its one element).
inline std::vector<size_t> half_fields(GgmlType type) {
  switch (type) {
    case GgmlType::F16: return {0};
    case GgmlType::Q8_0: return {offsetof(BlockQ8_0, d)};
    case GgmlType::Q4_0: return {offsetof(BlockQ4_0, d)};
    case GgmlType::Q4_1: return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case GgmlType::Q5_0: return {offsetof(BlockQ5_0, d)};
    case GgmlType::Q5_1: return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case GgmlType::Q2_K: return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case GgmlType::Q3_K: return {offsetof(BlockQ3_K, d)};
    case GgmlType::Q4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case GgmlType::Q5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case GgmlType::Q6_K: return {offsetof(BlockQ6_K, d)};
    default: return {};
  }
}

// How the fp16 fields (and F16/BF16/F32 elements) are drawn.
enum class Scales {
  kModerate,    // magnitudes log-uniform in [2^-12, 2^-2], random sign
  kAnyFinite,   // any finite half bit pattern, subnormals included (F32/BF16: any finite bits)
};

inline uint16_t random_half(std::mt19937& rng, Scales scales) {
  if (scales == Scales::kModerate) {
    const float magnitude = std::exp2(std::uniform_real_distribution<float>(-12.0f, -2.0f)(rng));
    return f32_to_f16(rng() % 2 ? magnitude : -magnitude);
  }
  for (;;) {
    const auto h = static_cast<uint16_t>(rng());
    if ((h & 0x7c00u) != 0x7c00u) return h;
  }
}

// `elements` elements of `type` (a whole number of blocks) as bytes.
inline std::vector<std::byte> random_row(GgmlType type, size_t elements, std::mt19937& rng,
                                         Scales scales = Scales::kModerate) {
  const GgmlTypeTraits t = ggml_traits(type);
  const size_t blocks = elements / static_cast<size_t>(t.block_elements);
  const auto block_bytes = static_cast<size_t>(t.block_bytes);
  std::vector<std::byte> row(blocks * block_bytes);
  for (auto& b : row) b = static_cast<std::byte>(rng());
  for (size_t b = 0; b < blocks; ++b) {
    std::byte* block = row.data() + b * block_bytes;
    if (type == GgmlType::F32 || type == GgmlType::BF16) {
      uint32_t bits;
      do {
        bits = scales == Scales::kModerate ? std::bit_cast<uint32_t>(std::normal_distribution<float>()(rng))
                                           : static_cast<uint32_t>(rng());
      } while ((bits & 0x7f800000u) == 0x7f800000u);
      if (type == GgmlType::F32) {
        std::memcpy(block, &bits, 4);
      } else {
        const uint16_t top = static_cast<uint16_t>(bits >> 16);
        std::memcpy(block, &top, 2);
      }
      continue;
    }
    for (size_t offset : half_fields(type)) {
      const uint16_t h = random_half(rng, scales);
      std::memcpy(block + offset, &h, 2);
    }
  }
  return row;
}

inline std::vector<float> gaussian(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace llama3::testing

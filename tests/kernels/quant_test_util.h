#pragma once
// Test data for the block formats: a tiny local quantizer to ggml Q8_0 / Q4_0 blocks
// (d = amax / 127 or amax / 7, q = round(x / d)), raw random blocks, and packing helpers.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/quant_pack.h"

namespace llama3::kernels::testing {

// rows x cols values (cols % 32 == 0) as ggml blocks, row-major.
inline std::vector<std::byte> quantize_ggml(WeightFormat f, const std::vector<float>& x, int64_t rows, int64_t cols) {
  const size_t block_bytes = ggml_block_bytes(f);
  std::vector<std::byte> out(static_cast<size_t>(rows * cols / 32) * block_bytes);
  for (int64_t blk = 0; blk < rows * cols / 32; ++blk) {
    const float* v = x.data() + blk * 32;
    float amax = 0.0f;
    for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(v[k]));
    const float d = amax / (f == WeightFormat::Q8_0 ? 127.0f : 7.0f);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    auto* b = reinterpret_cast<uint8_t*>(out.data() + blk * block_bytes);
    const uint16_t h = f32_to_f16(d);
    std::memcpy(b, &h, 2);
    for (int k = 0; k < 32; ++k) {
      const int q = static_cast<int>(std::round(v[k] * id));
      if (f == WeightFormat::Q8_0) {
        b[2 + k] = static_cast<uint8_t>(static_cast<int8_t>(q));
      } else {
        const auto u = static_cast<uint8_t>(std::clamp(q + 8, 0, 15));
        b[2 + k % 16] = static_cast<uint8_t>(k < 16 ? (b[2 + k % 16] & 0xf0) | u : (b[2 + k % 16] & 0x0f) | (u << 4));
      }
    }
  }
  return out;
}

// Random blocks: every quant byte pattern (Q8_0 includes -128, which the local quantizer never
// makes) and finite fp16 scales of either sign.
inline std::vector<std::byte> random_ggml(WeightFormat f, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t block_bytes = ggml_block_bytes(f);
  std::vector<std::byte> out(static_cast<size_t>(rows * cols / 32) * block_bytes);
  for (auto& b : out) b = static_cast<std::byte>(rng() & 0xff);
  std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
  for (size_t i = 0; i < out.size(); i += block_bytes) {
    const uint16_t h = f32_to_f16(scale(rng));
    std::memcpy(out.data() + i, &h, 2);
  }
  return out;
}

// A packed matrix that owns its bytes.
struct OwnedPacked {
  std::vector<std::byte> bytes;
  PackedMatrix m;
};

inline OwnedPacked pack(WeightFormat f, const std::vector<std::byte>& ggml, int64_t rows, int64_t cols) {
  OwnedPacked p;
  p.bytes.resize(packed_bytes(f, rows, cols));
  pack_ggml_rows(f, ggml, rows, cols, p.bytes);
  p.m = PackedMatrix{f, p.bytes.data(), rows, cols};
  return p;
}

// Dequantized ggml blocks (the reference reading of the format).
inline std::vector<float> dequantize_ggml(WeightFormat f, const std::vector<std::byte>& ggml, int64_t rows,
                                          int64_t cols) {
  const size_t block_bytes = ggml_block_bytes(f);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t blk = 0; blk < rows * cols / 32; ++blk) {
    const auto* b = reinterpret_cast<const uint8_t*>(ggml.data() + blk * block_bytes);
    uint16_t h;
    std::memcpy(&h, b, 2);
    const float d = f16_to_f32(h);
    for (int k = 0; k < 32; ++k) {
      const int q = f == WeightFormat::Q8_0 ? static_cast<int8_t>(b[2 + k])
                                            : (k < 16 ? b[2 + k] & 15 : b[2 + k - 16] >> 4) - 8;
      out[blk * 32 + k] = static_cast<float>(q) * d;
    }
  }
  return out;
}

}  // namespace llama3::kernels::testing

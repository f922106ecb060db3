// The 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and ggml's reference quantizers.
#include "core/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "core/dtype.h"
#include "core/error.h"

namespace llama3 {

namespace {

constexpr size_t kHalf = kBlockElements / 2;

// The 4-bit code of element j (0..31): low nibbles hold the first half, high nibbles the second.
int nibble(const uint8_t (&qs)[16], size_t j) { return j < kHalf ? qs[j] & 0x0f : qs[j - kHalf] >> 4; }

// The 5-bit code of element j: the nibble plus bit j of the 32-bit little-endian qh as bit 4.
int five_bits(const uint8_t (&qs)[16], const uint8_t (&qh)[4], size_t j) {
  return nibble(qs, j) | (((qh[j / 8] >> (j % 8)) & 1) << 4);
}

// ggml converts a float to int8 with a C cast, which C leaves undefined for NaN and out-of-range
// values; on x86 (cvttss2si) those give INT32_MIN, whose low byte is 0. Doing the same here
// keeps us bit-exact with ggml for inputs such as NaN or a block so tiny that 1/d overflows,
// without undefined behaviour. static_cast to int8_t keeps the low byte (C++20).
int8_t truncate_to_int8(float v) {
  const bool fits = v >= -2147483648.0f && v < 2147483648.0f;  // the floats cvttss2si converts
  return static_cast<int8_t>(fits ? static_cast<int32_t>(v) : INT32_MIN);
}

void check_quantize_sizes(std::string_view format, size_t values, size_t blocks) {
  check(values % kBlockElements == 0, "{} quantization needs a multiple of {} values, got {}", format,
        kBlockElements, values);
  check(blocks == values / kBlockElements, "{} quantization of {} values needs {} blocks, got {}", format,
        values, values / kBlockElements, blocks);
}

}  // namespace

void dequantize_block(const BlockQ8_0& block, std::span<float, kBlockElements> out) {
  const float d = f16_to_f32(block.d);
  for (size_t j = 0; j < kBlockElements; ++j) out[j] = static_cast<float>(block.qs[j]) * d;
}

void dequantize_block(const BlockQ4_0& block, std::span<float, kBlockElements> out) {
  const float d = f16_to_f32(block.d);
  for (size_t j = 0; j < kBlockElements; ++j) out[j] = static_cast<float>(nibble(block.qs, j) - 8) * d;
}

void dequantize_block(const BlockQ4_1& block, std::span<float, kBlockElements> out) {
  const float d = f16_to_f32(block.d);
  const float m = f16_to_f32(block.m);
  for (size_t j = 0; j < kBlockElements; ++j) out[j] = static_cast<float>(nibble(block.qs, j)) * d + m;
}

void dequantize_block(const BlockQ5_0& block, std::span<float, kBlockElements> out) {
  const float d = f16_to_f32(block.d);
  for (size_t j = 0; j < kBlockElements; ++j) {
    out[j] = static_cast<float>(five_bits(block.qs, block.qh, j) - 16) * d;
  }
}

void dequantize_block(const BlockQ5_1& block, std::span<float, kBlockElements> out) {
  const float d = f16_to_f32(block.d);
  const float m = f16_to_f32(block.m);
  for (size_t j = 0; j < kBlockElements; ++j) {
    out[j] = static_cast<float>(five_bits(block.qs, block.qh, j)) * d + m;
  }
}

BlockQ8_0 to_q8_0(const BlockQ4_0& block) {
  BlockQ8_0 out{block.d, {}};
  for (size_t j = 0; j < kBlockElements; ++j) out.qs[j] = static_cast<int8_t>(nibble(block.qs, j) - 8);
  return out;
}

BlockQ8_0 to_q8_0(const BlockQ5_0& block) {
  BlockQ8_0 out{block.d, {}};
  for (size_t j = 0; j < kBlockElements; ++j) {
    out.qs[j] = static_cast<int8_t>(five_bits(block.qs, block.qh, j) - 16);
  }
  return out;
}

// d = amax / 127 so the largest magnitude maps to +-127; q = round half away from zero (roundf).
// The quants use the float d, the block stores d rounded to fp16, as ggml does.
void quantize_row_q8_0(std::span<const float> src, std::span<BlockQ8_0> dst) {
  check_quantize_sizes("Q8_0", src.size(), dst.size());
  for (size_t b = 0; b < dst.size(); ++b) {
    const float* x = src.data() + b * kBlockElements;
    float amax = 0.0f;
    for (size_t j = 0; j < kBlockElements; ++j) {
      const float a = std::fabs(x[j]);
      amax = amax > a ? amax : a;  // this order, not std::max: a NaN propagates as in ggml's MAX
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    dst[b].d = f32_to_f16(d);
    for (size_t j = 0; j < kBlockElements; ++j) dst[b].qs[j] = truncate_to_int8(std::round(x[j] * id));
  }
}

// d = max / -8 where max is the first value of largest magnitude: it maps to code 0 (q - 8 = -8),
// using the full negative range; values of the other sign saturate at code 15. Codes are
// truncations of x / d + 8.5, i.e. rounding half up.
void quantize_row_q4_0(std::span<const float> src, std::span<BlockQ4_0> dst) {
  check_quantize_sizes("Q4_0", src.size(), dst.size());
  for (size_t b = 0; b < dst.size(); ++b) {
    const float* x = src.data() + b * kBlockElements;
    float amax = 0.0f;
    float max = 0.0f;
    for (size_t j = 0; j < kBlockElements; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    dst[b].d = f32_to_f16(d);
    const auto code = [&](size_t j) {
      return static_cast<uint8_t>(std::min<int>(15, truncate_to_int8(x[j] * id + 8.5f)));
    };
    for (size_t j = 0; j < kHalf; ++j) {
      dst[b].qs[j] = static_cast<uint8_t>(code(j) | (code(j + kHalf) << 4));
    }
  }
}

}  // namespace llama3

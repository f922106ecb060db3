// ggml's K-quant super-blocks (256 elements) to floats.
//
// Layouts, written per element e (0..255) rather than as ggml's pointer walks:
// - Q2_K and Q3_K: element e has sub-block e / 16. Its 2-bit code sits in byte
//   qs[32 * (e / 128) + e % 32] at bits 2 * ((e % 128) / 32): each 128-element half uses 32
//   bytes, and each byte holds four elements 32 apart. Q3_K's third bit is bit e / 32 of
//   hmask[e % 32], and counts as "-4 when clear".
// - Q4_K and Q5_K: element e has sub-block e / 32. Its nibble sits in byte qs[32 * (e / 64) + e % 32],
//   low nibble for even sub-blocks, high for odd. Q5_K's fifth bit is bit e / 32 of qh[e % 32].
// - Q6_K: element e has sub-block e / 16. With g = (e % 128) / 32 and l = e % 32, the low 4 bits are
//   in ql[64 * (e / 128) + 32 * (g % 2) + l] (low nibble for g < 2, high for g >= 2) and the top
//   2 bits at bits 2g of qh[32 * (e / 128) + l].
// Float operations are ggml's, in ggml's order: (d * scale) * q - (dmin * min).
#include <cstddef>

#include "core/dtype.h"
#include "core/quant_blocks.h"

namespace llama3 {

namespace {

// A 2-bit code of Q2_K/Q3_K.
int two_bits(const uint8_t (&qs)[64], size_t e) {
  return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// Q3_K's sixteen 6-bit scales in 12 bytes: low 4 bits of scale s in the low nibble of byte s
// (s < 8) or the high nibble of byte s - 8; top 2 bits at bits 2 * (s / 4) of byte 8 + s % 4.
// Stored with a bias of 32.
int q3_k_scale(const uint8_t (&scales)[12], size_t s) {
  const int low = s < 8 ? scales[s] & 0x0f : scales[s - 8] >> 4;
  const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Q4_K/Q5_K's eight 6-bit scales and eight 6-bit mins in 12 bytes. Sub-blocks 0-3: scale in the
// low 6 bits of byte s, min in the low 6 bits of byte s + 4. Sub-blocks 4-7: the low 4 bits in
// byte s + 4 (scale in the low nibble, min in the high one), the top 2 bits in the spare top
// bits of byte s - 4 (scale) and byte s (min).
struct ScaleMin {
  int scale;
  int min;
};
ScaleMin k4_scale_min(const uint8_t (&scales)[12], size_t s) {
  if (s < 4) return {scales[s] & 63, scales[s + 4] & 63};
  return {(scales[s + 4] & 0x0f) | ((scales[s - 4] >> 6) << 4),  //
          (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4)};
}

int k4_nibble(const uint8_t (&qs)[128], size_t e) {
  const uint8_t byte = qs[32 * (e / 64) + e % 32];
  return (e / 32) % 2 == 0 ? byte & 0x0f : byte >> 4;
}

// Q4_K and Q5_K share everything but the code: (d * scale) * code - (dmin * min) per sub-block.
template <typename Code>
void dequantize_scaled_codes(uint16_t d16, uint16_t dmin16, const uint8_t (&scales)[12],
                             std::span<float, kSuperBlockElements> out, Code code) {
  const float d = f16_to_f32(d16);
  const float dmin = f16_to_f32(dmin16);
  for (size_t e = 0; e < kSuperBlockElements; ++e) {
    const ScaleMin sm = k4_scale_min(scales, e / 32);
    const float scale = d * static_cast<float>(sm.scale);
    const float min = dmin * static_cast<float>(sm.min);
    out[e] = scale * static_cast<float>(code(e)) - min;
  }
}

}  // namespace

void dequantize_block(const BlockQ2_K& block, std::span<float, kSuperBlockElements> out) {
  const float d = f16_to_f32(block.d);
  const float dmin = f16_to_f32(block.dmin);
  for (size_t e = 0; e < kSuperBlockElements; ++e) {
    const int sc = block.scales[e / 16];
    const float scale = d * static_cast<float>(sc & 0x0f);
    const float min = dmin * static_cast<float>(sc >> 4);
    out[e] = scale * static_cast<float>(two_bits(block.qs, e)) - min;
  }
}

void dequantize_block(const BlockQ3_K& block, std::span<float, kSuperBlockElements> out) {
  const float d = f16_to_f32(block.d);
  for (size_t e = 0; e < kSuperBlockElements; ++e) {
    const float scale = d * static_cast<float>(q3_k_scale(block.scales, e / 16));
    const int high = (block.hmask[e % 32] >> (e / 32)) & 1;
    out[e] = scale * static_cast<float>(two_bits(block.qs, e) - (high ? 0 : 4));
  }
}

void dequantize_block(const BlockQ4_K& block, std::span<float, kSuperBlockElements> out) {
  dequantize_scaled_codes(block.d, block.dmin, block.scales, out, [&](size_t e) { return k4_nibble(block.qs, e); });
}

void dequantize_block(const BlockQ5_K& block, std::span<float, kSuperBlockElements> out) {
  dequantize_scaled_codes(block.d, block.dmin, block.scales, out, [&](size_t e) {
    return k4_nibble(block.qs, e) | (((block.qh[e % 32] >> (e / 32)) & 1) << 4);
  });
}

void dequantize_block(const BlockQ6_K& block, std::span<float, kSuperBlockElements> out) {
  const float d = f16_to_f32(block.d);
  for (size_t e = 0; e < kSuperBlockElements; ++e) {
    const size_t half = e / 128;
    const size_t g = (e % 128) / 32;
    const size_t l = e % 32;
    const uint8_t low_byte = block.ql[64 * half + 32 * (g % 2) + l];
    const int low = g < 2 ? low_byte & 0x0f : low_byte >> 4;
    const int high = (block.qh[32 * half + l] >> (2 * g)) & 3;
    const float scale = d * static_cast<float>(block.scales[e / 16]);
    out[e] = scale * static_cast<float>((low | (high << 4)) - 32);
  }
}

}  // namespace llama3

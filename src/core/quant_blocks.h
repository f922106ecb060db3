#pragma once
// ggml's quantized block formats, bit-exact with ggml (ggml-common.h, ggml-quants.c): the block
// layouts, ggml's reference quantizers for Q8_0 and Q4_0, dequantizers for the formats a GGUF
// Llama is usually stored in, and conversion of a row to Q8_0 (the engine's 8-bit format) or bf16.
// Scalar and per row: these run once at load; callers split rows over threads.
//
// Scales are IEEE halves stored as raw bits (core/dtype.h converts them). Block structs hold
// only uint8_t/int8_t/uint16_t, so they have no padding and alignment 2; the row functions copy
// blocks out of byte spans, so a source span may sit at any address of a mapped file.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/ggml_type.h"

namespace llama3 {

inline constexpr size_t kBlockElements = 32;        // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
inline constexpr size_t kSuperBlockElements = 256;  // K-quants (ggml's QK_K)

// x = q * d, q in [-127, 127].
struct BlockQ8_0 {
  static constexpr GgmlType kType = GgmlType::Q8_0;
  static constexpr size_t kElements = kBlockElements;
  uint16_t d;
  int8_t qs[32];
};

// x = (q - 8) * d; element j in the low nibble of qs[j], element j + 16 in its high nibble.
struct BlockQ4_0 {
  static constexpr GgmlType kType = GgmlType::Q4_0;
  static constexpr size_t kElements = kBlockElements;
  uint16_t d;
  uint8_t qs[16];
};

// x = q * d + m; nibbles as in Q4_0.
struct BlockQ4_1 {
  static constexpr GgmlType kType = GgmlType::Q4_1;
  static constexpr size_t kElements = kBlockElements;
  uint16_t d;
  uint16_t m;
  uint8_t qs[16];
};

// x = (q - 16) * d; low 4 bits as in Q4_0, bit 4 of element j is bit j of the little-endian qh.
struct BlockQ5_0 {
  static constexpr GgmlType kType = GgmlType::Q5_0;
  static constexpr size_t kElements = kBlockElements;
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};

// x = q * d + m; q as in Q5_0.
struct BlockQ5_1 {
  static constexpr GgmlType kType = GgmlType::Q5_1;
  static constexpr size_t kElements = kBlockElements;
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};

// 16 sub-blocks of 16: x = d * scale * q - dmin * min, 4-bit scale (low nibble) and min (high
// nibble) per sub-block, 2-bit q. The 2-bit planes are laid out as described in k_quants.cpp.
struct BlockQ2_K {
  static constexpr GgmlType kType = GgmlType::Q2_K;
  static constexpr size_t kElements = kSuperBlockElements;
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d;
  uint16_t dmin;
};

// 16 sub-blocks of 16: x = d * (scale - 32) * (q - 4), 6-bit scales packed in 12 bytes, q's low
// 2 bits in qs, bit 2 in hmask.
struct BlockQ3_K {
  static constexpr GgmlType kType = GgmlType::Q3_K;
  static constexpr size_t kElements = kSuperBlockElements;
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};

// 8 sub-blocks of 32: x = d * scale * q - dmin * min, 6-bit scales and mins packed in 12 bytes.
struct BlockQ4_K {
  static constexpr GgmlType kType = GgmlType::Q4_K;
  static constexpr size_t kElements = kSuperBlockElements;
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};

// As Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  static constexpr GgmlType kType = GgmlType::Q5_K;
  static constexpr size_t kElements = kSuperBlockElements;
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};

// 16 sub-blocks of 16: x = d * scale * (q - 32), int8 scales, q's low 4 bits in ql, high 2 in qh.
struct BlockQ6_K {
  static constexpr GgmlType kType = GgmlType::Q6_K;
  static constexpr size_t kElements = kSuperBlockElements;
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};

static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// One block to floats, with ggml's dequantize_row_* arithmetic (same operations in the same order).
void dequantize_block(const BlockQ8_0& block, std::span<float, kBlockElements> out);
void dequantize_block(const BlockQ4_0& block, std::span<float, kBlockElements> out);
void dequantize_block(const BlockQ4_1& block, std::span<float, kBlockElements> out);
void dequantize_block(const BlockQ5_0& block, std::span<float, kBlockElements> out);
void dequantize_block(const BlockQ5_1& block, std::span<float, kBlockElements> out);
void dequantize_block(const BlockQ2_K& block, std::span<float, kSuperBlockElements> out);
void dequantize_block(const BlockQ3_K& block, std::span<float, kSuperBlockElements> out);
void dequantize_block(const BlockQ4_K& block, std::span<float, kSuperBlockElements> out);
void dequantize_block(const BlockQ5_K& block, std::span<float, kSuperBlockElements> out);
void dequantize_block(const BlockQ6_K& block, std::span<float, kSuperBlockElements> out);

// The exact re-encodings behind convert_row_to_q8_0: same scale, q - 8 (Q4_0) or q - 16 (Q5_0).
BlockQ8_0 to_q8_0(const BlockQ4_0& block);
BlockQ8_0 to_q8_0(const BlockQ5_0& block);

// ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref, bit for bit (including NaN, infinite and
// tiny inputs, where ggml relies on x86's float-to-int conversion). src.size() must be a multiple
// of 32 and dst must hold src.size() / 32 blocks; throws llama3::Error otherwise.
void quantize_row_q8_0(std::span<const float> src, std::span<BlockQ8_0> dst);
void quantize_row_q4_0(std::span<const float> src, std::span<BlockQ4_0> dst);

// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
bool can_dequantize(GgmlType type);

// dst.size() elements of `type` to floats. src must hold exactly the blocks of those elements;
// throws llama3::Error for a ragged row, a wrong byte count or a type it cannot dequantize.
void dequantize_row(GgmlType type, std::span<const std::byte> src, std::span<float> dst);

// Q8_0, Q4_0 and Q5_0: each holds an integer times one fp16 scale per 32 elements, and Q8_0 can
// hold the same integers with the same scale, so the values stay the same bit for bit. Other
// types are dequantized and requantized with quantize_row_q8_0 (lossy).
bool converts_exactly_to_q8_0(GgmlType type);

// A row of dst.size() * 32 elements of `type` to Q8_0 blocks; same checks as dequantize_row.
void convert_row_to_q8_0(GgmlType type, std::span<const std::byte> src, std::span<BlockQ8_0> dst);

// A row of dst.size() elements of `type` to bf16 (dequantized, rounded to nearest even).
void convert_row_to_bf16(GgmlType type, std::span<const std::byte> src, std::span<uint16_t> dst);

}  // namespace llama3

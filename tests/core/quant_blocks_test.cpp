#include "core/quant_blocks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "random_rows.h"

namespace llama3 {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;
using testing::dequantizable_types;
using testing::gaussian;
using testing::random_row;
using testing::Scales;

// fp16 bits of a few exact values.
constexpr uint16_t kHalfQuarter = 0x3400, kHalfHalf = 0x3800, kHalfOne = 0x3c00, kHalfTwo = 0x4000;
constexpr uint16_t kHalfMinusOne = 0xbc00;

template <typename Block>
std::vector<float> dequantized_block(const Block& block) {
  std::vector<float> out(Block::kElements);
  dequantize_row(Block::kType, std::as_bytes(std::span(&block, 1)), out);
  return out;
}

std::vector<float> dequantized(GgmlType type, std::span<const std::byte> row, size_t elements) {
  std::vector<float> out(elements);
  dequantize_row(type, row, out);
  return out;
}

std::vector<float> dequantized(std::span<const BlockQ8_0> blocks) {
  return dequantized(GgmlType::Q8_0, std::as_bytes(blocks), blocks.size() * kBlockElements);
}

// Equal as bit patterns (so -0 != +0 and NaN == the same NaN), reporting the first difference.
void expect_bitwise_equal(std::span<const float> got, std::span<const float> want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
        << what << ": element " << i << " is " << got[i] << ", want " << want[i];
  }
}

template <typename Block>
void expect_traits_match() {
  const GgmlTypeTraits t = ggml_traits(Block::kType);
  EXPECT_EQ(sizeof(Block), static_cast<size_t>(t.block_bytes)) << t.name;
  EXPECT_EQ(Block::kElements, static_cast<size_t>(t.block_elements)) << t.name;
}

TEST(QuantBlocks, StructsMatchTheTypeTable) {
  expect_traits_match<BlockQ8_0>();
  expect_traits_match<BlockQ4_0>();
  expect_traits_match<BlockQ4_1>();
  expect_traits_match<BlockQ5_0>();
  expect_traits_match<BlockQ5_1>();
  expect_traits_match<BlockQ2_K>();
  expect_traits_match<BlockQ3_K>();
  expect_traits_match<BlockQ4_K>();
  expect_traits_match<BlockQ5_K>();
  expect_traits_match<BlockQ6_K>();
}

// Hand-computed blocks: each value below is worked out from the format's definition in the comment.

TEST(QuantBlocks, Q8_0ByHand) {
  BlockQ8_0 b{kHalfHalf, {}};
  b.qs[0] = -128;
  b.qs[3] = -7;
  b.qs[31] = 127;
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[0], -64.0f);  // q * d
  EXPECT_EQ(y[3], -3.5f);
  EXPECT_EQ(y[31], 63.5f);
  EXPECT_EQ(y[1], 0.0f);
}

TEST(QuantBlocks, Q4_0ByHand) {
  BlockQ4_0 b{kHalfTwo, {}};
  b.qs[0] = 0x93;   // element 0: low nibble 3, element 16: high nibble 9
  b.qs[15] = 0xf0;  // element 15: 0, element 31: 15
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[0], -10.0f);   // (3 - 8) * 2
  EXPECT_EQ(y[16], 2.0f);    // (9 - 8) * 2
  EXPECT_EQ(y[15], -16.0f);  // (0 - 8) * 2
  EXPECT_EQ(y[31], 14.0f);   // (15 - 8) * 2
}

TEST(QuantBlocks, Q4_1ByHand) {
  BlockQ4_1 b{kHalfHalf, kHalfMinusOne, {}};
  b.qs[1] = 0xf0;
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[1], -1.0f);   // 0 * 0.5 - 1
  EXPECT_EQ(y[17], 6.5f);   // 15 * 0.5 - 1
}

TEST(QuantBlocks, Q5_0ByHand) {
  BlockQ5_0 b{kHalfOne, {0x04, 0x00, 0x04, 0x80}, {}};  // qh bits 2, 18 and 31 set
  b.qs[2] = 0x31;
  b.qs[15] = 0xf0;
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[2], 1.0f);    // (1 | 16) - 16
  EXPECT_EQ(y[18], 3.0f);   // (3 | 16) - 16
  EXPECT_EQ(y[3], -16.0f);  // (0 | 0) - 16
  EXPECT_EQ(y[15], -16.0f); // low nibble 0, qh bit 15 clear
  EXPECT_EQ(y[31], 15.0f);  // (15 | 16) - 16
}

TEST(QuantBlocks, Q5_1ByHand) {
  BlockQ5_1 b{kHalfQuarter, kHalfOne, {0x20, 0, 0, 0}, {}};  // qh bit 5 set
  b.qs[5] = 0x0f;
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[5], 8.75f);  // 31 * 0.25 + 1
  EXPECT_EQ(y[21], 1.0f);  // 0 * 0.25 + 1
}

TEST(QuantBlocks, Q2_KByHand) {
  BlockQ2_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  b.scales[5] = 0x32;   // sub-block 5 (elements 80..95): scale 2, min 3
  b.scales[11] = 0x1f;  // sub-block 11 (176..191): scale 15, min 1
  b.qs[21] = 0x30;      // element 85: first half, bits 4-5 (third quarter), byte 85 % 32 = 21: code 3
  b.qs[53] = 0x08;      // element 181: second half (bytes 32..63), bits 2-3, byte 32 + 53 % 32: code 2
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[85], 4.5f);    // 1 * 2 * 3 - 0.5 * 3
  EXPECT_EQ(y[181], 29.5f);  // 1 * 15 * 2 - 0.5 * 1
  EXPECT_EQ(y[80], -1.5f);   // code 0 in sub-block 5: - 0.5 * 3
  EXPECT_EQ(y[21], 0.0f);    // byte 21's bits 0-1 belong to element 21, sub-block 1 with scale 0
}

TEST(QuantBlocks, Q3_KByHand) {
  BlockQ3_K b{};
  b.d = kHalfTwo;
  b.scales[0] = 0x0f;  // scale 0 low bits 15
  b.scales[8] = 0x03;  // scale 0 top bits 3: 63 - 32 = 31
  b.scales[1] = 0x50;  // scale 9 low bits (high nibble of byte 1): 5
  b.scales[9] = 0x20;  // scale 9 top bits (byte 8 + 9 % 4, bits 2 * (9 / 4)): 2 -> 37 - 32 = 5
  // scale 15: low bits in byte 7's high nibble, top bits in byte 11's bits 6-7, both 0: -32
  b.qs[0] = 0x03;      // element 0: code 3
  b.hmask[0] = 0x01;   // element 0: hmask[0] bit 0 set, so no -4
  b.qs[54] = 0x02;     // element 150: second half, byte 32 + 22, bits 0-1: code 2
  b.qs[63] = 0x40;     // element 255: byte 32 + 31, bits 6-7: code 1
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[0], 186.0f);    // 2 * 31 * 3
  EXPECT_EQ(y[150], -20.0f);  // 2 * 5 * (2 - 4): hmask[22] bit 4 clear
  EXPECT_EQ(y[255], 192.0f);  // 2 * -32 * (1 - 4)
  b.hmask[22] = 0x10;
  EXPECT_EQ(dequantized_block(b)[150], 20.0f);  // 2 * 5 * 2
}

TEST(QuantBlocks, Q4_KByHand) {
  BlockQ4_K b{};
  b.d = kHalfHalf;
  b.dmin = kHalfQuarter;
  b.scales[1] = 0x05;   // sub-block 1: scale 5
  b.scales[5] = 0x02;   // sub-block 1: min 2
  b.scales[10] = 0x73;  // sub-block 6: scale low 3, min low 7
  b.scales[2] = 0x80;   // sub-block 6 scale top bits 2 (bits 6-7 of byte 6 - 4); sub-block 2 scale 0
  b.scales[6] = 0x40;   // sub-block 6 min top bits 1 (bits 6-7 of byte 6); sub-block 2 min 0
  b.qs[8] = 0xc0;       // element 40: sub-block 1 (odd: high nibble), byte 8: 12
  b.qs[40] = 0x0f;      // element 72: sub-block 2, byte 32 + 8, low nibble: 15
  b.qs[104] = 0x0a;     // element 200: sub-block 6 (even: low nibble), byte 96 + 8: 10
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[40], 29.5f);     // 0.5 * 5 * 12 - 0.25 * 2
  EXPECT_EQ(y[72], 0.0f);      // scale and min of sub-block 2 are the low 6 bits only: 0
  EXPECT_EQ(y[200], 169.25f);  // 0.5 * (3 | 2 << 4) * 10 - 0.25 * (7 | 1 << 4)
}

TEST(QuantBlocks, Q5_KByHand) {
  BlockQ5_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfOne;
  b.scales[3] = 0x04;   // sub-block 3: scale 4
  b.scales[7] = 0x03;   // sub-block 3: min 3
  b.scales[11] = 0x21;  // sub-block 7: scale 1, min 2 (top bits from bytes 3 and 7 are 0)
  b.qs[36] = 0x70;      // element 100: sub-block 3 (odd: high nibble), byte 32 + 4: 7
  b.qh[4] = 0x08;       // element 100: fifth bit is bit 100 / 32 = 3 of qh[4]
  b.qs[127] = 0xf0;     // element 255: byte 96 + 31, high nibble: 15
  b.qh[31] = 0x80;      // element 255: bit 7 of qh[31]
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[100], 89.0f);  // 1 * 4 * (7 + 16) - 1 * 3
  EXPECT_EQ(y[255], 29.0f);  // 1 * 1 * 31 - 1 * 2
  EXPECT_EQ(y[68], 0.0f);    // byte 36's low nibble (0) with sub-block 2's scale and min 0
}

TEST(QuantBlocks, Q6_KByHand) {
  BlockQ6_K b{};
  b.d = kHalfHalf;
  b.scales[12] = -3;
  b.scales[2] = 2;
  b.ql[72] = 0x50;  // element 200: half 1, g = 2, l = 8: ql[64 + 8] high nibble 5
  b.qh[40] = 0x20;  // element 200: qh[32 + 8] bits 4-5: 2
  const auto y = dequantized_block(b);
  EXPECT_EQ(y[200], -7.5f);  // 0.5 * -3 * ((5 | 2 << 4) - 32)
  EXPECT_EQ(y[40], -32.0f);  // element 40: ql[40] low nibble 0, qh[8] bits 2-3 0, scale 2: 0.5 * 2 * -32
}

TEST(QuantBlocks, PlainTypesByHand) {
  const uint16_t halves[2] = {kHalfOne, 0xc000};
  EXPECT_THAT(dequantized(GgmlType::F16, std::as_bytes(std::span(halves)), 2), ::testing::ElementsAre(1.0f, -2.0f));
  const uint16_t bf16s[2] = {0x3f80, 0xc040};
  EXPECT_THAT(dequantized(GgmlType::BF16, std::as_bytes(std::span(bf16s)), 2), ::testing::ElementsAre(1.0f, -3.0f));
  const float f32s[3] = {1.5f, -0.0f, 7.0f};
  EXPECT_THAT(dequantized(GgmlType::F32, std::as_bytes(std::span(f32s)), 3),
              ::testing::ElementsAre(1.5f, -0.0f, 7.0f));
}

TEST(QuantBlocks, SourceNeedNotBeAligned) {
  std::mt19937 rng(7);
  for (GgmlType type : dequantizable_types()) {
    const auto row = random_row(type, 512, rng);
    std::vector<std::byte> shifted(row.size() + 1);
    std::memcpy(shifted.data() + 1, row.data(), row.size());
    expect_bitwise_equal(dequantized(type, std::span(shifted).subspan(1), 512), dequantized(type, row, 512),
                         std::string(ggml_type_name(type)));
  }
}

// Quantizers.

// Q8_0 rounds x / d to the nearest integer (|error| <= d / 2), then stores d as fp16: the stored
// scale differs from d by |d16 - d|, which each of up to 127 steps carries. The last term covers
// the float rounding of x * (1 / d) (a few ulps of a value up to 127).
TEST(QuantBlocks, Q8_0ErrorWithinHalfAStep) {
  std::mt19937 rng(1);
  auto x = gaussian(64 * kBlockElements, rng);
  for (size_t i = 0; i < x.size(); ++i) x[i] *= std::exp2(static_cast<float>(static_cast<int>(i / 32 % 20) - 10));
  std::vector<BlockQ8_0> q(64);
  quantize_row_q8_0(x, q);
  const auto y = dequantized(q);
  for (size_t b = 0; b < q.size(); ++b) {
    float amax = 0;
    for (size_t j = 0; j < kBlockElements; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127;
    const float d16 = f16_to_f32(q[b].d);
    EXPECT_EQ(q[b].d, f32_to_f16(d));
    const float tolerance = d / 2 + 127 * std::fabs(d16 - d) + 1e-5f * d;
    bool hit_127 = false;
    for (size_t j = 0; j < kBlockElements; ++j) {
      const size_t i = b * 32 + j;
      EXPECT_LE(std::fabs(x[i] - y[i]), tolerance) << "element " << i;
      hit_127 |= std::abs(q[b].qs[j]) == 127;
    }
    EXPECT_TRUE(hit_127) << "block " << b << ": the largest magnitude maps to +-127";
  }
}

TEST(QuantBlocks, Q8_0IsExactOnItsOwnGrid) {
  std::vector<float> x(kBlockElements);
  for (size_t j = 0; j < x.size(); ++j) x[j] = 0.5f * (static_cast<float>(j * 8) - 127);  // -63.5 .. 60.5
  x[31] = 63.5f;  // amax 63.5: d = 0.5 exactly
  std::vector<BlockQ8_0> q(1);
  quantize_row_q8_0(x, q);
  EXPECT_EQ(q[0].d, kHalfHalf);
  expect_bitwise_equal(dequantized(q), x, "Q8_0 grid");
  std::vector<BlockQ8_0> zero(1);
  quantize_row_q8_0(std::vector<float>(32, 0.0f), zero);
  EXPECT_EQ(zero[0].d, 0);
  for (int8_t v : zero[0].qs) EXPECT_EQ(v, 0);
}

TEST(QuantBlocks, Q4_0QuantizesByHand) {
  std::vector<float> x(kBlockElements, 0.0f);
  x[0] = 4.0f;   // first largest magnitude: d = 4 / -8 = -0.5, code 0
  x[1] = -4.0f;  // same magnitude of the other sign: x / d = 8 saturates at code 15
  x[2] = 1.25f;  // x / d + 8.5 = 6: code 6, a tie rounded up
  std::vector<BlockQ4_0> q(1);
  quantize_row_q4_0(x, q);
  EXPECT_EQ(q[0].d, 0xb800);     // -0.5
  EXPECT_EQ(q[0].qs[0], 0x80);   // element 0: code 0; element 16 (0.0): code 8
  EXPECT_EQ(q[0].qs[1], 0x8f);
  EXPECT_EQ(q[0].qs[2], 0x86);
  const auto y = dequantized_block(q[0]);
  EXPECT_EQ(y[0], 4.0f);
  EXPECT_EQ(y[1], -3.5f);
  EXPECT_EQ(y[2], 1.0f);
}

// Q4_0 rounds to the nearest step (|error| <= |d| / 2) except where it saturates at code 15
// (x / d in [7.5, 8], |error| <= |d|); the fp16 scale adds up to 8 |d16 - d|.
TEST(QuantBlocks, Q4_0ErrorWithinItsBound) {
  std::mt19937 rng(2);
  const auto x = gaussian(64 * kBlockElements, rng);
  std::vector<BlockQ4_0> q(64);
  quantize_row_q4_0(x, q);
  for (size_t b = 0; b < q.size(); ++b) {
    float amax = 0, max = 0;
    for (size_t j = 0; j < kBlockElements; ++j) {
      if (amax < std::fabs(x[b * 32 + j])) {
        amax = std::fabs(x[b * 32 + j]);
        max = x[b * 32 + j];
      }
    }
    const float d = max / -8;
    const float d16 = f16_to_f32(q[b].d);
    const auto y = dequantized_block(q[b]);
    for (size_t j = 0; j < kBlockElements; ++j) {
      const float v = x[b * 32 + j];
      const bool saturated = v / d >= 7.5f;
      const float step = std::fabs(d) * (saturated ? 1.0f : 0.5f);
      const float tolerance = step + 8 * std::fabs(d16 - d) + 1e-5f * std::fabs(d);
      EXPECT_LE(std::fabs(v - y[j]), tolerance) << "block " << b << " element " << j;
    }
  }
}

TEST(QuantBlocks, QuantizersRejectRaggedRows) {
  std::vector<float> x(33);
  std::vector<BlockQ8_0> q8(1);
  std::vector<BlockQ4_0> q4(1);
  EXPECT_THAT([&] { quantize_row_q8_0(x, q8); }, ThrowsMessage<Error>(HasSubstr("multiple of 32 values, got 33")));
  EXPECT_THAT([&] { quantize_row_q4_0(x, q4); }, ThrowsMessage<Error>(HasSubstr("multiple of 32 values, got 33")));
  x.resize(64);
  EXPECT_THAT([&] { quantize_row_q8_0(x, q8); }, ThrowsMessage<Error>(HasSubstr("needs 2 blocks, got 1")));
}

// Row checks.

TEST(QuantBlocks, CanDequantizeExactlyTheListedTypes) {
  for (GgmlType type : dequantizable_types()) EXPECT_TRUE(can_dequantize(type)) << ggml_type_name(type);
  for (GgmlType type : {GgmlType::Q8_1, GgmlType::Q8_K, GgmlType::IQ2_XS, GgmlType::IQ4_NL, GgmlType::I32,
                        GgmlType::MXFP4, GgmlType::TQ2_0}) {
    EXPECT_FALSE(can_dequantize(type)) << ggml_type_name(type);
  }
}

TEST(QuantBlocks, BadRowsAreClearErrors) {
  std::vector<std::byte> bytes(18);
  std::vector<float> out(32);
  std::vector<BlockQ8_0> q8(1);
  std::vector<uint16_t> bf16(32);
  EXPECT_THAT([&] { dequantize_row(GgmlType::IQ2_XS, bytes, out); },
              ThrowsMessage<Error>(HasSubstr("cannot dequantize ggml type IQ2_XS")));
  EXPECT_THAT([&] { convert_row_to_q8_0(GgmlType::MXFP4, bytes, q8); },
              ThrowsMessage<Error>(HasSubstr("cannot dequantize ggml type MXFP4")));
  EXPECT_THAT([&] { convert_row_to_bf16(GgmlType::Q8_K, bytes, bf16); },
              ThrowsMessage<Error>(HasSubstr("cannot dequantize ggml type Q8_K")));
  EXPECT_THAT([&] { dequantize_row(static_cast<GgmlType>(5), bytes, out); },
              ThrowsMessage<Error>(HasSubstr("ggml type id 5 is not known")));
  EXPECT_THAT([&] { dequantize_row(GgmlType::Q4_0, std::span(bytes).first(17), out); },
              ThrowsMessage<Error>(HasSubstr("Q4_0 row of 32 elements takes 18 bytes, got 17")));
  EXPECT_THAT([&] { dequantize_row(GgmlType::Q4_0, bytes, std::span(out).first(31)); },
              ThrowsMessage<Error>(HasSubstr("Q4_0 row of 31 elements is not a whole number of 32-element blocks")));
  std::vector<std::byte> q4k(144);
  EXPECT_THAT([&] { convert_row_to_q8_0(GgmlType::Q4_K, q4k, q8); },
              ThrowsMessage<Error>(HasSubstr("Q4_K row of 32 elements is not a whole number of 256-element blocks")));
  EXPECT_THAT([&] { convert_row_to_q8_0(GgmlType::Q8_0, std::span(bytes).first(18), q8); },
              ThrowsMessage<Error>(HasSubstr("Q8_0 row of 32 elements takes 34 bytes, got 18")));
  EXPECT_THAT([&] { convert_row_to_bf16(GgmlType::F16, bytes, bf16); },
              ThrowsMessage<Error>(HasSubstr("F16 row of 32 elements takes 64 bytes, got 18")));
}

// Conversions.

TEST(QuantBlocks, ExactConversionsKeepEveryValue) {
  std::mt19937 rng(3);
  for (GgmlType type : dequantizable_types()) {
    const bool exact = type == GgmlType::Q8_0 || type == GgmlType::Q4_0 || type == GgmlType::Q5_0;
    EXPECT_EQ(converts_exactly_to_q8_0(type), exact) << ggml_type_name(type);
    if (!converts_exactly_to_q8_0(type)) continue;
    for (Scales scales : {Scales::kModerate, Scales::kAnyFinite}) {
      const auto row = random_row(type, 1024, rng, scales);
      std::vector<BlockQ8_0> q8(1024 / kBlockElements);
      convert_row_to_q8_0(type, row, q8);
      expect_bitwise_equal(dequantized(q8), dequantized(type, row, 1024), std::string(ggml_type_name(type)));
    }
  }
}

// The lossy path is quantize_row_q8_0 of the dequantized row, so each element obeys Q8_0's bound
// (see Q8_0ErrorWithinHalfAStep) relative to its 32-element block of the source values.
TEST(QuantBlocks, LossyConversionsWithinQ8_0Bound) {
  std::mt19937 rng(4);
  for (GgmlType type : dequantizable_types()) {
    if (converts_exactly_to_q8_0(type)) continue;
    const auto row = random_row(type, 1024, rng);
    const auto want = dequantized(type, row, 1024);
    std::vector<BlockQ8_0> q8(1024 / kBlockElements);
    convert_row_to_q8_0(type, row, q8);
    const auto got = dequantized(q8);
    for (size_t b = 0; b < q8.size(); ++b) {
      float amax = 0;
      for (size_t j = 0; j < kBlockElements; ++j) amax = std::max(amax, std::fabs(want[b * 32 + j]));
      const float d = amax / 127;
      const float tolerance = d / 2 + 127 * std::fabs(f16_to_f32(q8[b].d) - d) + 1e-5f * d;
      for (size_t j = 0; j < kBlockElements; ++j) {
        const size_t i = b * 32 + j;
        ASSERT_LE(std::fabs(got[i] - want[i]), tolerance) << ggml_type_name(type) << " element " << i;
      }
    }
  }
}

TEST(QuantBlocks, Bf16ConversionRoundsTheDequantizedValues) {
  std::mt19937 rng(5);
  for (GgmlType type : dequantizable_types()) {
    // 300 F32/F16/BF16 elements leave a partial last chunk; blocks are whole.
    const size_t n = ggml_traits(type).block_elements == 1 ? 300 : 512;
    const auto row = random_row(type, n, rng, Scales::kAnyFinite);
    const auto values = dequantized(type, row, n);
    std::vector<uint16_t> got(n);
    convert_row_to_bf16(type, row, got);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], f32_to_bf16(values[i])) << ggml_type_name(type) << " element " << i;
    }
  }
  const float tie = 1.0f + 0x1p-8f;  // halfway between bf16 1.0 and 1.0078125: to even
  uint16_t out = 0;
  convert_row_to_bf16(GgmlType::F32, std::as_bytes(std::span(&tie, 1)), std::span(&out, 1));
  EXPECT_EQ(out, 0x3f80);
}

}  // namespace
}  // namespace llama3

#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace llama3 {
namespace {

TEST(DType, Bf16RoundTripIsExactForBf16Values) {
  for (uint32_t v = 0; v < 0x10000; v += 7) {
    const uint16_t b = static_cast<uint16_t>(v);
    const float f = bf16_to_f32(b);
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_bf16(f), b) << v;
  }
}

TEST(DType, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to even (1).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-12f)), 1.0f + 0x1p-7f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, F16RoundTripAllFiniteHalves) {
  for (uint32_t v = 0; v < 0x10000; ++v) {
    const uint16_t h = static_cast<uint16_t>(v);
    const float f = f16_to_f32(h);
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << std::hex << v;
  }
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);
}

// ggml stores block scales with GGML_FP32_TO_FP16, which rounds to nearest even; so must we for
// bit-exact blocks (tests/core/quant_blocks_ggml_test.cpp checks against ggml itself).
TEST(DType, F16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);                 // tie between 1 and 1 + 2^-10: even (1)
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);             // tie between odd 0x3c01 and 0x3c02
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);      // just above a tie: up
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);                        // subnormal tie between 0 and 2^-24
  EXPECT_EQ(f32_to_f16(3 * 0x1p-25f), 0x0002);                    // subnormal tie between 1 and 2 ulps
  EXPECT_EQ(f32_to_f16(-3 * 0x1p-25f), 0x8002);
  EXPECT_EQ(f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400);             // rounds up into the smallest normal
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);                        // below the tie with 65536: largest half
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                        // the tie goes to even, which is infinity
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::quiet_NaN()), 0x7e00);
}

TEST(DType, F16NaNsComeBackQuiet) {
  // 0x7c01 is a signalling half NaN; converting it quiets it, as F16C hardware and ggml do.
  const uint32_t bits = std::bit_cast<uint32_t>(f16_to_f32(0x7c01));
  EXPECT_EQ(bits, 0x7fc02000u);
  EXPECT_EQ(std::bit_cast<uint32_t>(f16_to_f32(0xfc00)), 0xff800000u);  // -inf stays infinite
}

}  // namespace
}  // namespace llama3

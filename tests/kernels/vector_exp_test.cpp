// The vectorized exp and silu_mul: within 3 ulp of std::exp, bitwise equal on every ISA.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/simd_scalar.h"
#include "kernels/vector_exp.h"
#include "kernel_test_util.h"

namespace llama3::kernels {
namespace {

float ulp_distance(float a, float b) {
  return std::fabs(a - b) / (std::nextafter(std::fabs(b), INFINITY) - std::fabs(b));
}

TEST(VectorExp, WithinThreeUlpOfStdExpOverTheClampedRange) {
  float worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0037f) {
    worst = std::max(worst, ulp_distance(exp_vec<ScalarLane>(x), std::exp(x)));
  }
  EXPECT_LE(worst, 3.0f);
  EXPECT_EQ(exp_vec<ScalarLane>(0.0f), 1.0f);
  EXPECT_TRUE(std::isfinite(exp_vec<ScalarLane>(1000.0f)));  // clamped, never inf
  EXPECT_GE(exp_vec<ScalarLane>(-1000.0f), 0.0f);
}

TEST(VectorExp, SiluMulOfEveryIsaIsBitwiseTheScalarOne) {
  for (int64_t n : {1, 7, 16, 17, 1000, 8193}) {
    auto gate = testing::random_floats(static_cast<size_t>(n), 1, 30.0f);
    gate[0] = -200.0f;  // far outside exp's range: silu -> -0
    const auto up = testing::random_floats(static_cast<size_t>(n), 2, 3.0f);
    auto want = gate;
    silu_mul_scalar(want.data(), up.data(), n);
    for (size_t i = 0; i < want.size(); ++i) {
      const double g = gate[i];
      ASSERT_NEAR(want[i], g / (1 + std::exp(-g)) * up[i], 1e-6 * (1 + std::fabs(want[i]))) << i;
    }
    for (Isa isa : testing::simd_isas()) {
      const testing::IsaScope scope(isa);
      auto got = gate;
      silu_mul(got.data(), up.data(), n);
      EXPECT_EQ(got, want) << isa_name(isa) << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace llama3::kernels

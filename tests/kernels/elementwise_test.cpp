#include "kernels/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace llama3::kernels {
namespace {

TEST(Elementwise, RmsNormKnownValues) {
  const float x[] = {3.0f, 4.0f};  // mean square 12.5
  const float w[] = {1.0f, 2.0f};
  float y[2];
  rmsnorm(x, w, y, 2, 0.0f);
  EXPECT_FLOAT_EQ(y[0], 3.0f / std::sqrt(12.5f));
  EXPECT_FLOAT_EQ(y[1], 8.0f / std::sqrt(12.5f));
  rmsnorm(x, w, y, 2, 1e5f);  // eps dominates
  EXPECT_NEAR(y[0], 3.0f / std::sqrt(12.5f + 1e5f), 1e-7);
}

TEST(Elementwise, SiluMul) {
  float g[] = {0.0f, 1.0f, -2.0f};
  const float u[] = {5.0f, 2.0f, 3.0f};
  silu_mul(g, u, 3);
  EXPECT_FLOAT_EQ(g[0], 0.0f);
  EXPECT_FLOAT_EQ(g[1], 2.0f / (1.0f + std::exp(-1.0f)));
  EXPECT_FLOAT_EQ(g[2], 3.0f * -2.0f / (1.0f + std::exp(2.0f)));
}

TEST(Elementwise, RopeRotatesAdjacentPairsPerHead) {
  // Two heads of dim 4; pair 0 rotated by 90 degrees, pair 1 by 0.
  float v[] = {1, 0, 1, 2, 0, 1, 3, 4};
  const float cos[] = {0, 1};
  const float sin[] = {1, 0};
  rope_rotate(v, 2, 4, cos, sin);
  const float expected[] = {0, 1, 1, 2, -1, 0, 3, 4};
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(v[i], expected[i]) << i;
}

TEST(Elementwise, SoftmaxIsStableForLargeInputs) {
  float x[] = {1000.0f, 1000.0f, -1000.0f};
  softmax(x, 3);
  EXPECT_FLOAT_EQ(x[0], 0.5f);
  EXPECT_FLOAT_EQ(x[1], 0.5f);
  EXPECT_FLOAT_EQ(x[2], 0.0f);
}

TEST(Elementwise, AllFinite) {
  float x[] = {1.0f, 2.0f, 3.0f};
  EXPECT_TRUE(all_finite(x, 3));
  x[1] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(all_finite(x, 3));
  x[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(all_finite(x, 3));
}

}  // namespace
}  // namespace llama3::kernels

namespace llama3::kernels {
namespace {

TEST(Elementwise, LayerNormMatchesTheDefinition) {
  const std::vector<float> x = {1.0f, 2.0f, 4.0f, -3.0f, 0.5f};
  const std::vector<float> w = {1.0f, 0.5f, -2.0f, 1.5f, 1.0f};
  const std::vector<float> b = {0.0f, 1.0f, 0.25f, -1.0f, 3.0f};
  std::vector<float> y(5);
  layernorm(x.data(), w.data(), b.data(), y.data(), 5, 1e-5f);
  double mean = 0, var = 0;
  for (float v : x) mean += v / 5.0;
  for (float v : x) var += (v - mean) * (v - mean) / 5.0;
  for (size_t i = 0; i < 5; ++i) {
    // fp32 output of a double computation: within one rounding of the definition.
    EXPECT_NEAR(y[i], (x[i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i], 1e-6) << i;
  }
}

TEST(Elementwise, GeluIsTheExactErfForm) {
  std::vector<float> x = {-6.0f, -1.0f, -0.1f, 0.0f, 0.3f, 1.0f, 2.5f, 8.0f};
  const std::vector<float> in = x;
  gelu(x.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = 0.5 * in[i] * (1.0 + std::erf(in[i] / std::sqrt(2.0)));
    // float erf: within a few ulp; the tanh approximation would be off by up to 1e-3 here.
    EXPECT_NEAR(x[i], want, 2e-6 * std::max(1.0, std::abs(want))) << in[i];
  }
}

}  // namespace
}  // namespace llama3::kernels

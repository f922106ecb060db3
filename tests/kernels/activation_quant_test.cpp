#include "kernels/activation_quant.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernel_test_util.h"

namespace llama3::kernels {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

void expect_same(const QuantizedActivations& a, const QuantizedActivations& b) {
  ASSERT_EQ(a.rows(), b.rows());
  ASSERT_EQ(a.k(), b.k());
  for (int64_t r = 0; r < a.rows(); ++r) {
    ASSERT_EQ(0, std::memcmp(a.q(r), b.q(r), static_cast<size_t>(a.k()))) << "q of row " << r;
    ASSERT_EQ(0, std::memcmp(a.scales(r), b.scales(r), static_cast<size_t>(a.blocks()) * 4)) << "d of row " << r;
    ASSERT_EQ(0, std::memcmp(a.sums(r), b.sums(r), static_cast<size_t>(a.blocks()) * 4)) << "sums of row " << r;
  }
}

TEST(ActivationQuant, EveryIsaIsBitwiseEqualToScalar) {
  for (int64_t k : {32, 96, 2048}) {
    for (int64_t rows : {1, 3, 40}) {
      const int64_t ldx = k + 5;
      auto x = testing::random_floats(static_cast<size_t>(rows * ldx), static_cast<uint32_t>(k + rows), 3.0f);
      for (int64_t i = 0; i < 32; ++i) x[i] = 0.0f;  // an all-zero block
      if (k > 32) {  // a block of exact ties: d = 1, x = n + 0.5
        x[32] = 127.0f;
        for (int64_t i = 1; i < 32; ++i) x[32 + i] = static_cast<float>(i) - 15.5f;
      }
      QuantizedActivations ref;
      {
        testing::IsaScope scope(Isa::Scalar);
        quantize_activations(x.data(), ldx, rows, k, ref);
      }
      for (Isa isa : testing::simd_isas()) {
        testing::IsaScope scope(isa);
        QuantizedActivations got;
        quantize_activations(x.data(), ldx, rows, k, got);
        SCOPED_TRACE(::testing::Message() << isa_name(isa) << " k=" << k << " rows=" << rows);
        expect_same(ref, got);
      }
    }
  }
}

TEST(ActivationQuant, ScaleIsAmaxOver127AndRoundingIsToNearestEven) {
  std::vector<float> x(32, 0.0f);
  x[0] = -127.0f;  // amax: d = 1, q = x exactly
  x[1] = 2.5f;     // ties go to the even neighbour
  x[2] = 3.5f;
  x[3] = -2.5f;
  x[4] = 0.49f;
  std::vector<float> y(64, 0.0f);  // second row: all zero
  std::copy(x.begin(), x.end(), y.begin());
  std::vector<Isa> isas = testing::simd_isas();
  isas.push_back(Isa::Scalar);
  for (Isa isa : isas) {
    testing::IsaScope scope(isa);
    QuantizedActivations a;
    quantize_activations(y.data(), 32, 2, 32, a);
    SCOPED_TRACE(std::string(isa_name(isa)));
    EXPECT_EQ(a.scales(0)[0], 1.0f);
    EXPECT_EQ(a.q(0)[0], -127);
    EXPECT_EQ(a.q(0)[1], 2);
    EXPECT_EQ(a.q(0)[2], 4);
    EXPECT_EQ(a.q(0)[3], -2);
    EXPECT_EQ(a.q(0)[4], 0);
    EXPECT_EQ(a.sums(0)[0], -127 + 2 + 4 - 2);
    EXPECT_EQ(a.scales(1)[0], 0.0f);
    EXPECT_EQ(a.sums(1)[0], 0);
  }
}

TEST(ActivationQuant, ResizeReusesItsBufferAndAlignsRows) {
  QuantizedActivations a(8, 2048);
  const int8_t* before = a.q(0);
  a.resize(4, 1024);
  EXPECT_EQ(a.q(0), before);
  EXPECT_EQ(a.rows(), 4);
  EXPECT_EQ(a.blocks(), 32);
  EXPECT_EQ(a.row_stride() % 64, 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.q(1)) % 64, 0u);
}

TEST(ActivationQuant, BadShapesAreErrors) {
  QuantizedActivations a;
  EXPECT_THAT([&] { a.resize(2, 48); }, ThrowsMessage<Error>(HasSubstr("multiple of 32")));
  EXPECT_THAT([&] { a.resize(-1, 32); }, ThrowsMessage<Error>(HasSubstr("-1 rows")));
  std::vector<float> x(64);
  EXPECT_THAT([&] { quantize_activations(x.data(), 16, 2, 32, a); },
              ThrowsMessage<Error>(HasSubstr("row stride 16 is less than k = 32")));
}

}  // namespace
}  // namespace llama3::kernels

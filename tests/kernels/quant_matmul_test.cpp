#include "kernels/quant_matmul.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <tuple>

#include "core/error.h"
#include "core/parallel.h"
#include "kernel_test_util.h"
#include "quant_test_util.h"

namespace llama3::kernels {
namespace {

using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

std::vector<Isa> all_isas() {
  std::vector<Isa> isas = testing::simd_isas();
  isas.push_back(Isa::Scalar);
  return isas;
}

// y = W x with the active ISA, into a [batch][rows + 1] buffer whose last column must stay untouched.
std::vector<float> product(const PackedMatrix& w, const QuantizedActivations& x) {
  std::vector<float> y(static_cast<size_t>(x.rows() * (w.rows + 1)), -7.0f);
  matmul_q(QMatmulJob{w, &x, y.data(), w.rows + 1});
  for (int64_t t = 0; t < x.rows(); ++t) EXPECT_EQ(y[t * (w.rows + 1) + w.rows], -7.0f) << "wrote past row " << t;
  return y;
}

std::string shape_name(const ::testing::TestParamInfo<std::tuple<WeightFormat, int64_t, int64_t>>& info) {
  return std::string(weight_format_name(std::get<0>(info.param))) + "_rows" + std::to_string(std::get<1>(info.param)) +
         "_k" + std::to_string(std::get<2>(info.param));
}

class QMatmulShapes : public ::testing::TestWithParam<std::tuple<WeightFormat, int64_t, int64_t>> {};

// Every ISA gives exactly the scalar reference's bits: same integer sums, same fp32 operations in
// the same order. Random blocks (Q8_0 quants include -128, the AVX2 sign trick's corner case).
TEST_P(QMatmulShapes, EveryIsaIsBitwiseEqualToScalar) {
  const auto [format, rows, k] = GetParam();
  const auto p = testing::pack(format, testing::random_ggml(format, rows, k, static_cast<uint32_t>(rows + k)), rows, k);
  std::vector<int64_t> batches = {1, 5, 8, 9, 16, 17, 31, 33, 512};
  if (k <= 96) {
    batches.clear();
    for (int64_t b = 1; b <= 33; ++b) batches.push_back(b);
  }
  for (int64_t batch : batches) {
    const auto x = testing::random_floats(static_cast<size_t>(batch * k), static_cast<uint32_t>(batch), 2.0f);
    QuantizedActivations qx;
    quantize_activations(x.data(), k, batch, k, qx);
    std::vector<float> ref;
    {
      testing::IsaScope scope(Isa::Scalar);
      ref = product(p.m, qx);
    }
    for (Isa isa : testing::simd_isas()) {
      testing::IsaScope scope(isa);
      const auto y = product(p.m, qx);
      ASSERT_EQ(0, std::memcmp(y.data(), ref.data(), y.size() * sizeof(float)))
          << isa_name(isa) << " " << weight_format_name(format) << " rows=" << rows << " k=" << k << " batch=" << batch;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(OddSizes, QMatmulShapes,
                         ::testing::Combine(::testing::Values(WeightFormat::Q8_0, WeightFormat::Q4_0),
                                           ::testing::Values(1, 15, 17, 33), ::testing::Values(32, 96, 2048, 8224)),
                         shape_name);

// Against an fp64 product of the dequantized weights and the ORIGINAL fp32 activations. Bound per
// output: activation quantization moves each x by at most d_a / 2 (round to nearest; the fp32
// division adds ~127 ulp of q, covered by the 1e-4 factor), so |error| <= sum over blocks of
// d_a / 2 * sum |w|; fp32 arithmetic adds at most (blocks + 1) * 2^-24 * sum |term| (one rounding
// of d_w * d_a and one per fma), doubled for margin.
TEST(QMatmul, MatchesFp64ProductWithinTheActivationQuantizationBound) {
  for (WeightFormat f : {WeightFormat::Q8_0, WeightFormat::Q4_0}) {
    for (Isa isa : all_isas()) {
      const int64_t rows = 33, k = 2048, batch = 9;
      const auto wf = testing::random_floats(static_cast<size_t>(rows * k), 31);
      const auto ggml = testing::quantize_ggml(f, wf, rows, k);
      const auto w = testing::dequantize_ggml(f, ggml, rows, k);
      const auto p = testing::pack(f, ggml, rows, k);
      const auto x = testing::random_floats(static_cast<size_t>(batch * k), 32);
      testing::IsaScope scope(isa);
      QuantizedActivations qx;
      quantize_activations(x.data(), k, batch, k, qx);
      const auto y = product(p.m, qx);
      double worst = 0.0;
      for (int64_t t = 0; t < batch; ++t) {
        for (int64_t n = 0; n < rows; ++n) {
          double exact = 0.0, quant_bound = 0.0, terms = 0.0, magnitude = 0.0;
          for (int64_t b = 0; b < k / 32; ++b) {
            double w_abs = 0.0, wx_abs = 0.0;
            for (int64_t j = b * 32; j < b * 32 + 32; ++j) {
              exact += static_cast<double>(w[n * k + j]) * x[t * k + j];
              w_abs += std::fabs(w[n * k + j]);
              wx_abs += std::fabs(static_cast<double>(w[n * k + j]) * x[t * k + j]);
            }
            quant_bound += qx.scales(t)[b] / 2.0 * (1.0 + 1e-4) * w_abs;
            terms += wx_abs + qx.scales(t)[b] / 2.0 * w_abs;  // >= |isum * d_w * d_a|
            magnitude += wx_abs;
          }
          const double bound = quant_bound + 2.0 * (k / 32 + 1) * std::ldexp(terms, -24);
          ASSERT_LE(std::fabs(y[t * (rows + 1) + n] - exact), bound)
              << isa_name(isa) << " " << weight_format_name(f) << " t=" << t << " n=" << n;
          ASSERT_LT(bound, 0.05 * magnitude) << "the bound must be tight enough to catch a wrong product";
          worst = std::max(worst, std::fabs(y[t * (rows + 1) + n] - exact) / bound);
        }
      }
      EXPECT_GT(worst, 0.01) << "suspiciously exact: is the reference the kernel itself?";
    }
  }
}

// A row's result must not depend on the batch around it (bitwise): per-row activation scales and
// a fixed per-row order of operations in every tile shape.
TEST(QMatmul, EachRowIsBitwiseIndependentOfTheBatch) {
  for (WeightFormat f : {WeightFormat::Q8_0, WeightFormat::Q4_0}) {
    const int64_t rows = 37, k = 320;
    const auto p = testing::pack(f, testing::random_ggml(f, rows, k, 41), rows, k);
    const auto x = testing::random_floats(static_cast<size_t>(32 * k), 42);
    for (Isa isa : all_isas()) {
      testing::IsaScope scope(isa);
      QuantizedActivations all, one;
      quantize_activations(x.data(), k, 32, k, all);
      const auto y_all = product(p.m, all);
      for (int64_t b : {0, 5, 7, 8, 30, 31}) {
        quantize_activations(x.data() + b * k, k, 1, k, one);
        const auto y_one = product(p.m, one);
        ASSERT_EQ(0, std::memcmp(y_one.data(), y_all.data() + b * (rows + 1), rows * sizeof(float)))
            << isa_name(isa) << " " << weight_format_name(f) << " b=" << b;
      }
    }
  }
}

TEST(QMatmul, SeveralJobsInOneCallMatchSeparateCallsForAnyThreadCount) {
  const auto p1 = testing::pack(WeightFormat::Q8_0, testing::random_ggml(WeightFormat::Q8_0, 70, 64, 51), 70, 64);
  const auto p2 = testing::pack(WeightFormat::Q4_0, testing::random_ggml(WeightFormat::Q4_0, 9, 64, 52), 9, 64);
  const auto p3 = testing::pack(WeightFormat::Q4_0, testing::random_ggml(WeightFormat::Q4_0, 48, 256, 53), 48, 256);
  const auto x1 = testing::random_floats(3 * 64, 54), x3 = testing::random_floats(5 * 256, 55);
  QuantizedActivations q1, q3;
  quantize_activations(x1.data(), 64, 3, 64, q1);
  quantize_activations(x3.data(), 256, 5, 256, q3);
  const int saved = thread_count();
  for (Isa isa : all_isas()) {
    testing::IsaScope scope(isa);
    const auto r1 = product(p1.m, q1), r2 = product(p2.m, q1), r3 = product(p3.m, q3);
    for (int threads : {1, 2, 3}) {
      set_thread_count(threads);
      std::vector<float> y1(3 * 71), y2(3 * 10), y3(5 * 49);
      const QMatmulJob jobs[] = {{p1.m, &q1, y1.data(), 71}, {p2.m, &q1, y2.data(), 10}, {p3.m, &q3, y3.data(), 49}};
      matmul_q(jobs);
      for (int64_t t = 0; t < 3; ++t) {  // the padding columns of r* are not written by matmul_q
        ASSERT_EQ(0, std::memcmp(y1.data() + t * 71, r1.data() + t * 71, 70 * 4)) << isa_name(isa) << " " << threads;
        ASSERT_EQ(0, std::memcmp(y2.data() + t * 10, r2.data() + t * 10, 9 * 4)) << isa_name(isa) << " " << threads;
      }
      for (int64_t t = 0; t < 5; ++t) {
        ASSERT_EQ(0, std::memcmp(y3.data() + t * 49, r3.data() + t * 49, 48 * 4)) << isa_name(isa) << " " << threads;
      }
    }
  }
  set_thread_count(saved);
}

TEST(QMatmul, MalformedJobsAreErrors) {
  const auto p = testing::pack(WeightFormat::Q8_0, testing::random_ggml(WeightFormat::Q8_0, 20, 64, 61), 20, 64);
  QuantizedActivations x(2, 96), x64(2, 64);
  std::vector<float> y(2 * 20);
  EXPECT_THAT([&] { matmul_q(QMatmulJob{p.m, &x, y.data(), 20}); },
              ThrowsMessage<Error>(HasSubstr("activations have k = 96, the 20x64 weights need 64")));
  EXPECT_THAT([&] { matmul_q(QMatmulJob{p.m, &x64, y.data(), 19}); },
              ThrowsMessage<Error>(HasSubstr("output row stride 19")));
  EXPECT_THAT([&] { matmul_q(QMatmulJob{p.m, nullptr, y.data(), 20}); }, ThrowsMessage<Error>(HasSubstr("no activations")));
  PackedMatrix bf16 = p.m;
  bf16.format = WeightFormat::BF16;
  EXPECT_THAT([&] { matmul_q(QMatmulJob{bf16, &x64, y.data(), 20}); }, ThrowsMessage<Error>(HasSubstr("matmul_bf16")));
  PackedMatrix odd = p.m;
  odd.cols = 48;
  EXPECT_THAT([&] { matmul_q(QMatmulJob{odd, &x64, y.data(), 20}); }, ThrowsMessage<Error>(HasSubstr("multiple of 32")));
  EXPECT_THAT([&] { matmul_q_rows(QMatmulJob{p.m, &x64, y.data(), 20}, 8, 20); },
              ThrowsMessage<Error>(HasSubstr("not whole groups")));
  // Nothing was written by the failed calls.
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace llama3::kernels

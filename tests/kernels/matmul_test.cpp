#include "kernels/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "kernel_test_util.h"

namespace llama3::kernels {
namespace {

using testing::random_bf16;
using testing::random_floats;

// Reference in double: the only difference from a kernel is fp32 rounding in a different
// summation order, bounded by ~K * 2^-24 * sum|w*x|. We allow 1e-5 * sum|w*x| + 1e-6, i.e. about
// 170x the worst-case bound per element at K=1000 is not needed: the observed error is far
// below 1e-6 relative, and a wrong index or a dropped tail element is >= 1e-3 relative.
void expect_matches_reference(const MatmulJob& job, const std::vector<uint16_t>& w, const std::vector<float>& x,
                              const std::vector<float>& y) {
  for (int64_t b = 0; b < job.batch; ++b) {
    for (int64_t n = 0; n < job.rows; ++n) {
      double exact = 0.0, magnitude = 0.0;
      for (int64_t k = 0; k < job.k_dim; ++k) {
        const double p = static_cast<double>(bf16_to_f32(w[n * job.k_dim + k])) * x[b * job.ldx + k];
        exact += p;
        magnitude += std::fabs(p);
      }
      ASSERT_NEAR(y[b * job.ldy + n], exact, 1e-5 * magnitude + 1e-6) << "b=" << b << " n=" << n;
    }
  }
}

class MatmulShapes : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(MatmulShapes, EveryIsaMatchesReference) {
  const auto [rows, k_dim, batch] = GetParam();
  const auto w = random_bf16(rows * k_dim, 1);
  const int64_t ldx = k_dim + 3;  // strided rows: kernels must honour ldx
  const auto x = random_floats(batch * ldx, 2);
  std::vector<Isa> isas = testing::simd_isas();
  isas.push_back(Isa::Scalar);
  for (Isa isa : isas) {
    testing::IsaScope scope(isa);
    std::vector<float> y(batch * (rows + 1), -7.0f);
    MatmulJob job{w.data(), rows, k_dim, x.data(), ldx, y.data(), rows + 1, batch};
    matmul_bf16(job);
    SCOPED_TRACE(std::string(isa_name(isa)));
    expect_matches_reference(job, w, x, y);
    for (int64_t b = 0; b < batch; ++b) EXPECT_EQ(y[b * (rows + 1) + rows], -7.0f) << "wrote past the row";
  }
}

// Odd sizes: row counts not multiple of the 4-row tiles or 16-row thread groups, K with SIMD
// tails (1, 15, 17, 33), batches not multiple of the batch tiles, and batch > 32 (blocking).
INSTANTIATE_TEST_SUITE_P(OddSizes, MatmulShapes,
                         ::testing::Values(std::make_tuple(1, 1, 1), std::make_tuple(3, 15, 1),
                                           std::make_tuple(5, 17, 2), std::make_tuple(17, 33, 3),
                                           std::make_tuple(64, 64, 5), std::make_tuple(37, 100, 7),
                                           std::make_tuple(130, 257, 33), std::make_tuple(16, 2048, 1),
                                           std::make_tuple(8, 16, 70)));

TEST(Matmul, MultipleJobsShareOneCallAndMatchSeparateCalls) {
  const auto w1 = random_bf16(40 * 24, 3);
  const auto w2 = random_bf16(9 * 24, 4);
  const auto x = random_floats(3 * 24, 5);
  std::vector<float> y1(3 * 40), y2(3 * 9), r1(3 * 40), r2(3 * 9);
  const MatmulJob jobs[] = {{w1.data(), 40, 24, x.data(), 24, y1.data(), 40, 3},
                            {w2.data(), 9, 24, x.data(), 24, y2.data(), 9, 3}};
  matmul_bf16(jobs);
  matmul_bf16(MatmulJob{w1.data(), 40, 24, x.data(), 24, r1.data(), 40, 3});
  matmul_bf16(MatmulJob{w2.data(), 9, 24, x.data(), 24, r2.data(), 9, 3});
  EXPECT_EQ(y1, r1);
  EXPECT_EQ(y2, r2);
}

// A row's result must not depend on the batch around it (bitwise): seeded sampling promises a
// user the same text whatever else is in the batch, and greedy ties must break the same way.
TEST(Matmul, EachRowIsBitwiseIndependentOfTheBatch) {
  const int64_t rows = 37, k_dim = 300;
  const auto w = random_bf16(rows * k_dim, 21);
  const auto x = random_floats(40 * k_dim, 22);
  std::vector<Isa> isas = testing::simd_isas();
  isas.push_back(Isa::Scalar);
  for (Isa isa : isas) {
    testing::IsaScope scope(isa);
    std::vector<float> all(40 * rows);
    matmul_bf16(MatmulJob{w.data(), rows, k_dim, x.data(), k_dim, all.data(), rows, 40});
    for (int64_t b : {0, 5, 33, 39}) {
      std::vector<float> alone(rows);
      matmul_bf16(MatmulJob{w.data(), rows, k_dim, x.data() + b * k_dim, k_dim, alone.data(), rows, 1});
      for (int64_t n = 0; n < rows; ++n) ASSERT_EQ(alone[n], all[b * rows + n]) << isa_name(isa) << " b=" << b;
    }
  }
}

TEST(CpuFeatures, CannotActivateMoreThanDetected) {
  if (detected_isa() == Isa::Avx512) GTEST_SKIP() << "this CPU has every level";
  EXPECT_THROW(set_active_isa(Isa::Avx512), std::exception);
}

}  // namespace
}  // namespace llama3::kernels

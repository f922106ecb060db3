#include "runtime/logit_stats.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llama3::runtime {
namespace {

TEST(LogitStats, LogSoftmaxIsNormalizedAndStableForHugeLogits) {
  const std::vector<float> lp = log_softmax(std::vector<float>{1000.0f, 1000.0f, 0.0f});
  EXPECT_NEAR(lp[0], std::log(0.5), 1e-6);
  EXPECT_NEAR(std::exp(lp[0]) + std::exp(lp[1]) + std::exp(lp[2]), 1.0, 1e-6);
}

TEST(LogitStats, TopKBreaksTiesByLowerId) {
  EXPECT_EQ(top_k_ids(std::vector<float>{1, 3, 3, 2}, 3), (std::vector<int32_t>{1, 2, 3}));
}

TEST(LogitStats, IdenticalDistributionsAgreeWithZeroDivergence) {
  const std::vector<float> logits{0.1f, 2.0f, -1.0f, 0.5f, 0.3f, 0.2f};
  const ReferencePosition ref = reference_position(logits);
  LogitComparison c;
  c.add(ref, logits, 1);
  EXPECT_EQ(c.top1(), 1.0);
  EXPECT_EQ(c.top5(), 1.0);
  EXPECT_NEAR(c.mean_kld(), 0.0, 1e-9);
  EXPECT_EQ(c.text_top1_rate(), 1.0);
}

TEST(LogitStats, KlDivergenceMatchesTheFormula) {
  // p = softmax(0, 0) = (1/2, 1/2); q = softmax(log 3, 0) = (3/4, 1/4).
  const ReferencePosition ref = reference_position(std::vector<float>{0.0f, 0.0f});
  LogitComparison c;
  c.add(ref, std::vector<float>{static_cast<float>(std::log(3.0)), 0.0f}, -1);
  const double expected = 0.5 * std::log(0.5 / 0.75) + 0.5 * std::log(0.5 / 0.25);
  EXPECT_NEAR(c.mean_kld(), expected, 1e-6);
}

TEST(LogitStats, Top5CountsTheReferenceTop1AmongTheModelsFive) {
  const ReferencePosition ref = reference_position(std::vector<float>{5, 0, 0, 0, 0, 0, 0});
  LogitComparison c;
  c.add(ref, std::vector<float>{3, 9, 8, 7, 6, 0, 0}, 0);  // ref top-1 (id 0) is 5th here
  c.add(ref, std::vector<float>{0, 9, 8, 7, 6, 5, 0}, 0);  // not in the top 5
  EXPECT_EQ(c.top1(), 0.0);
  EXPECT_EQ(c.top5(), 0.5);
  EXPECT_EQ(c.text_top5_rate(), 0.5);
}

TEST(LogitStats, PercentileIsNearestRank) {
  LogitComparison c;
  c.kld = {0.0, 1.0, 2.0, 3.0, 4.0};
  EXPECT_EQ(c.kld_percentile(0), 0.0);
  EXPECT_EQ(c.kld_percentile(50), 2.0);
  EXPECT_EQ(c.kld_percentile(100), 4.0);
}

}  // namespace
}  // namespace llama3::runtime

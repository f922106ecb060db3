#include "runtime/kv_pool_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/kv_cache.h"
#include "tiny_model.h"

namespace llama3::runtime {
namespace {

using ::testing::HasSubstr;

// The tiny model: 2 layers x (K + V) x 2 kv heads x head_dim 16 = 128 values per position.
const model::ModelConfig kConfig = testing::tiny_config();
constexpr size_t kBf16Block = 2 * 2 * 2 * 16 * 2 * 32;  // bytes of a block of 32 positions

TEST(KvPoolPlan, BudgetBuysBlocksUpToWhatTheBatchCanUse) {
  KvPoolRequest r;
  r.batch_size = 8;
  r.max_seq_len = 1000;  // 32 blocks per user
  r.kv_memory_gib = 100.0 * kBf16Block / (1 << 30);
  KvPoolPlan p = plan_kv_pool(kConfig, r);
  EXPECT_EQ(p.num_blocks, 100);
  EXPECT_EQ(p.bytes, 100 * kBf16Block);
  EXPECT_EQ(p.bytes, model::KvCache::bytes_for(kConfig, 100, 32, kernels::KvDType::BF16));
  EXPECT_EQ(p.bytes_per_user, 32 * kBf16Block);
  r.kv_memory_gib = 1.0;  // far more than 8 users x 32 blocks
  EXPECT_EQ(plan_kv_pool(kConfig, r).num_blocks, 8 * 32);
}

TEST(KvPoolPlan, DefaultBudgetLeavesTheWeightsAndAMargin) {
  KvPoolRequest r;
  r.batch_size = 32;
  r.max_seq_len = 8192;  // 256 blocks per user, 8192 for the batch
  r.available_bytes = 1000 * kBf16Block + 500;
  r.weight_bytes = 500;
  const KvPoolPlan p = plan_kv_pool(kConfig, r);
  EXPECT_EQ(p.num_blocks, static_cast<int64_t>(1000 * (1.0 - kKvMemoryMargin)));
  EXPECT_THAT(p.source, HasSubstr("default"));
}

TEST(KvPoolPlan, PageParamsOverrideTheBudgetAndQ8HalvesTheBytes) {
  KvPoolRequest r;
  r.batch_size = 1;
  r.max_seq_len = 100;
  r.block_size = 16;
  r.num_blocks = 7;
  r.kv_memory_gib = 1e-9;
  const KvPoolPlan p = plan_kv_pool(kConfig, r);
  EXPECT_EQ(p.num_blocks, 7);
  EXPECT_EQ(p.block_size, 16);
  r.dtype = kernels::KvDType::Q8;
  EXPECT_EQ(plan_kv_pool(kConfig, r).bytes * 32, p.bytes * 20);  // head_dim 16: 16 + 4 bytes vs 32
}

TEST(KvPoolPlan, PoolShorterThanOneUserIsAnErrorNamingBothFigures) {
  KvPoolRequest r;
  r.max_seq_len = 131072;
  r.kv_memory_gib = 10.0 * kBf16Block / (1 << 30);
  try {
    plan_kv_pool(kConfig, r);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("10 blocks of 32 positions"));
    EXPECT_THAT(e.what(), HasSubstr("--max_seq_len 131072, which needs 4096 blocks"));
  }
  r.kv_memory_gib = -1.0;
  EXPECT_THROW(plan_kv_pool(kConfig, r), Error);
}

// With too little memory beside the weights for one user, the default is one user's pool: the
// memory plan then refuses the run naming the weights (a "0 blocks" error would blame the pool).
TEST(KvPoolPlan, DefaultBudgetBelowOneUserPlansOneUser) {
  KvPoolRequest r;
  r.batch_size = 4;
  r.max_seq_len = 1000;  // 32 blocks per user
  r.available_bytes = 500;
  r.weight_bytes = 1000;
  const KvPoolPlan p = plan_kv_pool(kConfig, r);
  EXPECT_EQ(p.num_blocks, 32);
  EXPECT_THAT(p.source, HasSubstr("one user"));
}

}  // namespace
}  // namespace llama3::runtime

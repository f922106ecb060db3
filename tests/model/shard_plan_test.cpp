#include "model/shard_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "mesh_model.h"
#include "model/random_weights.h"

namespace llama3::model {
namespace {

using ::testing::HasSubstr;

TEST(ShardPlan, OneRankHoldsTheWholeModel) {
  const ModelConfig c = preset("Llama-3.1-8B");
  const ShardPlan p = shard_plan(c, 0, 1);
  EXPECT_TRUE(p.whole());
  EXPECT_EQ(p.q_heads.size, 32);
  EXPECT_EQ(p.kv_heads.size, 8);
  EXPECT_EQ(p.ffn.size, c.ffn_dim);
  EXPECT_EQ(p.vocab.size, c.vocab_size);
}

TEST(ShardPlan, The70BOnEightRanksTakesOneKvHeadAndItsQueryHeadsEach) {
  const ModelConfig c = preset("Llama-3.1-70B");
  for (int r = 0; r < 8; ++r) {
    const ShardPlan p = shard_plan(c, r, 8);
    EXPECT_EQ(p.kv_heads.begin, r);
    EXPECT_EQ(p.kv_heads.size, 1);
    EXPECT_EQ(p.q_heads.begin, 8 * r);
    EXPECT_EQ(p.q_heads.size, 8);
    EXPECT_EQ(p.ffn.size, 28672 / 8);
    EXPECT_EQ(p.vocab.size, 128256 / 8);
  }
}

// Every query head, MLP row and vocabulary row is on exactly one rank, and each rank's query
// heads use only its kv heads (head h shares kv head h / group).
TEST(ShardPlan, SlicesCoverTheModelOnceAndQueryHeadsStayWithTheirKvHead) {
  for (bool gqa : {true, false}) {
    const ModelConfig c = testing::mesh_config(gqa, false);
    const int64_t group = c.n_heads / c.n_kv_heads;
    for (int ranks : {1, 2, 4, 8}) {
      SCOPED_TRACE(::testing::Message() << "gqa " << gqa << ", " << ranks << " ranks");
      std::vector<int> q(c.n_heads), ffn(c.ffn_dim), vocab(c.vocab_size);
      for (int r = 0; r < ranks; ++r) {
        const ShardPlan p = shard_plan(c, r, ranks);
        for (int64_t h = p.q_heads.begin; h < p.q_heads.end(); ++h) {
          ++q[h];
          EXPECT_GE(h / group, p.kv_heads.begin);
          EXPECT_LT(h / group, p.kv_heads.end());
        }
        for (int64_t i = p.ffn.begin; i < p.ffn.end(); ++i) ++ffn[i];
        for (int64_t i = p.vocab.begin; i < p.vocab.end(); ++i) ++vocab[i];
        EXPECT_LE(p.vocab.size, p.vocab_stride);
        // The local ratio of query to kv heads is what the attention kernel assumes.
        EXPECT_EQ(p.q_heads.size % p.kv_heads.size, 0);
      }
      for (int n : q) EXPECT_EQ(n, 1);
      for (int n : ffn) EXPECT_EQ(n, 1);
      for (int n : vocab) EXPECT_EQ(n, 1);
    }
  }
}

TEST(ShardPlan, ReplicatesAKvHeadWhenRanksOutnumberThem) {
  const ModelConfig c = testing::mesh_config(true, false);  // 8 query heads, 2 kv heads
  const ShardPlan p = shard_plan(c, 5, 8);                   // kv head 1 lives on ranks 4..7
  EXPECT_EQ(p.kv_heads.begin, 1);
  EXPECT_EQ(p.kv_heads.size, 1);
  EXPECT_EQ(p.q_heads.begin, 5);
  EXPECT_EQ(p.q_heads.size, 1);
  EXPECT_EQ(shard_kv_config(c, p).n_kv_heads, 1);
}

TEST(ShardPlan, RefusesSplitsThatDoNotDivide) {
  const ModelConfig c = preset("Llama-3.1-8B");
  EXPECT_THAT([&] { shard_plan(c, 0, 3); }, ::testing::ThrowsMessage<Error>(HasSubstr("kv heads over 3 ranks")));
  EXPECT_THAT([&] { shard_plan(c, 0, 64); }, ::testing::ThrowsMessage<Error>(HasSubstr("query heads")));
  ModelConfig narrow = testing::mesh_config(true, false);
  narrow.ffn_dim = 96;  // 48 per rank on 2: not a whole number of 32-wide blocks
  EXPECT_THAT([&] { shard_plan(narrow, 0, 2); }, ::testing::ThrowsMessage<Error>(HasSubstr("multiple of 32")));
  EXPECT_THAT([&] { shard_plan(c, 2, 2); }, ::testing::ThrowsMessage<Error>(HasSubstr("is not a rank")));
}

// A rank's random weights are exactly the whole model's slices: every mesh computes one model.
TEST(ShardPlan, RandomWeightsOfARankAreSlicesOfTheWholeModel) {
  const ModelConfig c = testing::mesh_config(true, false);
  const ModelWeights whole = random_weights(c, 7);
  const ShardPlan p = shard_plan(c, 3, 4);
  const ModelWeights part = random_weights(c, 7, precision_mode("bf16"), p);
  const int64_t hd = c.head_dim;
  auto same_block = [](const Matrix& big, const Matrix& small, int64_t r0, int64_t c0) {
    ASSERT_LE(r0 + small.rows, big.rows);
    ASSERT_LE(c0 + small.cols, big.cols);
    for (int64_t r = 0; r < small.rows; ++r)
      for (int64_t k = 0; k < small.cols; ++k)
        ASSERT_EQ(small.bf16()[r * small.cols + k], big.bf16()[(r0 + r) * big.cols + c0 + k]) << r << "," << k;
  };
  EXPECT_EQ(part.shard.rank, 3);
  same_block(whole.tok_embeddings, part.tok_embeddings, p.vocab.begin, 0);
  same_block(whole.output, part.output, p.vocab.begin, 0);
  for (size_t l = 0; l < whole.layers.size(); ++l) {
    const LayerWeights &w = whole.layers[l], &s = part.layers[l];
    same_block(w.wq, s.wq, p.q_heads.begin * hd, 0);
    same_block(w.wk, s.wk, p.kv_heads.begin * hd, 0);
    same_block(w.wv, s.wv, p.kv_heads.begin * hd, 0);
    same_block(w.wo, s.wo, 0, p.q_heads.begin * hd);
    same_block(w.w1, s.w1, p.ffn.begin, 0);
    same_block(w.w3, s.w3, p.ffn.begin, 0);
    same_block(w.w2, s.w2, 0, p.ffn.begin);
    EXPECT_EQ(s.wq.rows, p.q_heads.size * hd);
    EXPECT_EQ(s.w2.cols, p.ffn.size);
  }
}

}  // namespace
}  // namespace llama3::model

#include "model/llama_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/parallel.h"
#include "model/checkpoint_loader.h"
#include "model/random_weights.h"
#include "model/forward_helpers.h"
#include "tiny_model.h"

namespace llama3::model {
namespace {

class ForwardKv : public ::testing::TestWithParam<kernels::KvDType> {};

TEST_P(ForwardKv, PrefillThenDecodeEqualsFullRecomputation) {
  LlamaModel m(small_config(), random_weights(small_config(), 1));
  const auto seq = tokens(40, 2);
  const auto expected = full_logits(m, seq, GetParam());
  // Prefill 25 tokens in chunks of 10, then decode one at a time.
  KvCache cache(m.config(), 64, 16, GetParam());
  const auto table = identity_table(64);
  std::vector<float> logits;
  const int64_t V = m.config().vocab_size;
  for (size_t pos = 0; pos < seq.size();) {
    const size_t n = pos < 25 ? std::min<size_t>(10, 25 - pos) : 1;
    const BatchItem item{std::span(seq).subspan(pos, n), static_cast<int64_t>(pos), table, true};
    m.forward({&item, 1}, cache, logits);
    for (size_t j = 0; j < n; ++j) {
      for (int64_t v = 0; v < V; ++v) {
        // Same arithmetic per row in both paths (matmul rows are independent, attention per
        // token), so only the batch tiling differs: results agree to fp32 rounding.
        ASSERT_NEAR(logits[j * V + v], expected[(pos + j) * V + v], 1e-4f * (1 + std::fabs(expected[(pos + j) * V + v])))
            << "pos " << pos + j << " vocab " << v;
      }
    }
    pos += n;
  }
}

INSTANTIATE_TEST_SUITE_P(KvTypes, ForwardKv, ::testing::Values(kernels::KvDType::F32, kernels::KvDType::BF16));

TEST(Forward, BatchedEqualsEachSequenceAlone) {
  LlamaModel m(small_config(), random_weights(small_config(), 3));
  const int64_t V = m.config().vocab_size;
  const std::vector<std::vector<int32_t>> seqs = {tokens(5, 1), tokens(17, 2), tokens(1, 3), tokens(33, 4)};
  std::vector<std::vector<float>> alone;
  for (const auto& s : seqs) {
    auto all = full_logits(m, s, kernels::KvDType::BF16);
    alone.emplace_back(all.end() - V, all.end());
  }
  // All four in one batch, each with its own shuffled blocks from one shared pool.
  KvCache cache(m.config(), 40, 8, kernels::KvDType::BF16);
  std::vector<int32_t> free(40);
  std::iota(free.begin(), free.end(), 0);
  std::shuffle(free.begin(), free.end(), std::mt19937(5));
  std::vector<std::vector<int32_t>> tables;
  size_t next = 0;
  for (const auto& s : seqs) {
    const size_t blocks = (s.size() + 7) / 8;
    tables.emplace_back(free.begin() + static_cast<long>(next), free.begin() + static_cast<long>(next + blocks));
    next += blocks;
  }
  std::vector<BatchItem> batch;
  for (size_t i = 0; i < seqs.size(); ++i) batch.push_back({seqs[i], 0, tables[i], false});
  std::vector<float> logits;
  m.forward(batch, cache, logits);
  for (size_t i = 0; i < seqs.size(); ++i) {
    for (int64_t v = 0; v < V; ++v) {
      ASSERT_NEAR(logits[i * V + v], alone[i][v], 1e-4f * (1 + std::fabs(alone[i][v]))) << "seq " << i;
    }
  }
}

TEST(Forward, SingleThreadEqualsTwoThreads) {
  LlamaModel m(small_config(), random_weights(small_config(), 4));
  expect_same_logits_on_one_and_two_threads(m);  // threads split rows, never a sum: bitwise equal
}

TEST(Forward, RandomWeightsAreDeterministicAndPromptsDiffer) {
  const ModelConfig c = small_config();
  LlamaModel a(c, random_weights(c, 7)), b(c, random_weights(c, 7)), other(c, random_weights(c, 8));
  const auto seq = tokens(10, 1);
  EXPECT_EQ(full_logits(a, seq, kernels::KvDType::F32), full_logits(b, seq, kernels::KvDType::F32));
  EXPECT_NE(full_logits(a, seq, kernels::KvDType::F32), full_logits(other, seq, kernels::KvDType::F32));
}

TEST(Forward, RejectsBadTokensAndShortBlockTables) {
  LlamaModel m(small_config(), random_weights(small_config(), 1));
  KvCache cache(m.config(), 4, 4);
  const auto table = identity_table(2);
  std::vector<float> logits;
  const std::vector<int32_t> bad = {1, 300};
  const BatchItem item{bad, 0, table, false};
  EXPECT_THROW(m.forward({&item, 1}, cache, logits), Error);
  const auto long_seq = tokens(9, 1);  // needs 3 blocks of 4
  const BatchItem item2{long_seq, 0, table, false};
  EXPECT_THROW(m.forward({&item2, 1}, cache, logits), Error);
  const std::vector<int32_t> out_of_pool = {0, 7};
  const BatchItem item3{tokens(5, 1), 0, out_of_pool, false};
  EXPECT_THROW(m.forward({&item3, 1}, cache, logits), Error);
}

TEST(CheckpointLoader, HfRowPermutationMatchesHuggingFaceConversion) {
  // HF's convert script: w.view(heads, hd/2, 2, dim).transpose(1, 2): HF row (h, j, i) holds
  // Meta row (h, 2i + j). For head_dim 4: Meta rows 0,1,2,3 sit at HF rows 0,2,1,3.
  EXPECT_EQ(hf_row_of_meta_row(0, 4), 0);
  EXPECT_EQ(hf_row_of_meta_row(1, 4), 2);
  EXPECT_EQ(hf_row_of_meta_row(2, 4), 1);
  EXPECT_EQ(hf_row_of_meta_row(3, 4), 3);
  EXPECT_EQ(hf_row_of_meta_row(5, 4), 6);  // second head
  // A bijection for a real head_dim.
  std::vector<int> seen(256, 0);
  for (int r = 0; r < 256; ++r) seen[hf_row_of_meta_row(r, 128)]++;
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
}

}  // namespace
}  // namespace llama3::model

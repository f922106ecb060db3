// The forward pass with 8-/4-bit weights: the properties the engine keeps in every mode, and
// how close each mode stays to bf16 on the same weights.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/parallel.h"
#include "model/forward_helpers.h"
#include "model/llama_model.h"
#include "model/random_weights.h"

namespace llama3::model {
namespace {

using kernels::WeightFormat;

LlamaModel model_in(const std::string& mode, const ModelConfig& c = small_config(), uint64_t seed = 1) {
  return LlamaModel(c, random_weights(c, seed, precision_mode(mode)));
}

TEST(QuantizedForward, ModesPutEachMatrixInItsFormat) {
  const ModelConfig tied = testing::tiny_config(300, true);
  const ModelWeights perf = random_weights(tied, 1, precision_mode("performance"));
  EXPECT_EQ(perf.layers[0].w1.format, WeightFormat::Q4_0);
  EXPECT_EQ(perf.layers[0].w3.format, WeightFormat::Q4_0);
  EXPECT_EQ(perf.layers[0].w2.format, WeightFormat::Q8_0);
  EXPECT_EQ(perf.layers[0].wq.format, WeightFormat::Q8_0);
  EXPECT_EQ(perf.output.format, WeightFormat::Q8_0);
  EXPECT_TRUE(perf.tied());  // one matrix, in the LM head's format
  const ModelWeights untied = random_weights(small_config(), 1, precision_mode("accuracy"));
  EXPECT_EQ(untied.output.format, WeightFormat::Q8_0);
  EXPECT_EQ(untied.tok_embeddings.format, WeightFormat::BF16);  // an untied embedding stays as stored
}

class QuantizedModes : public ::testing::TestWithParam<const char*> {};

TEST_P(QuantizedModes, EachSequenceIsBitwiseIndependentOfTheBatch) {
  LlamaModel m = model_in(GetParam());
  const int64_t V = m.config().vocab_size;
  std::vector<std::vector<int32_t>> seqs = {tokens(9, 1), tokens(3, 2), tokens(17, 3)};
  std::vector<std::vector<float>> alone;
  for (const auto& s : seqs) {
    const auto all = full_logits(m, s, kernels::KvDType::BF16);
    alone.emplace_back(all.end() - V, all.end());
  }
  KvCache cache(m.config(), 64, 16);
  std::vector<std::vector<int32_t>> tables = {identity_table(8)};
  for (int b = 1; b < 3; ++b) {
    tables.push_back(identity_table(8));
    for (auto& x : tables.back()) x += 8 * b;
  }
  std::vector<BatchItem> items;
  for (size_t i = 0; i < seqs.size(); ++i) items.push_back({seqs[i], 0, tables[i], false});
  std::vector<float> logits;
  m.forward(items, cache, logits);
  for (size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_TRUE(std::equal(alone[i].begin(), alone[i].end(), logits.begin() + static_cast<int64_t>(i) * V))
        << "sequence " << i;
  }
}

TEST_P(QuantizedModes, PrefillThenDecodeEqualsFullRecomputation) {
  LlamaModel m = model_in(GetParam());
  const auto seq = tokens(30, 4);
  const auto expected = full_logits(m, seq, kernels::KvDType::F32);
  KvCache cache(m.config(), 64, 16, kernels::KvDType::F32);
  const auto table = identity_table(64);
  const int64_t V = m.config().vocab_size;
  std::vector<float> logits;
  for (size_t pos = 0; pos < seq.size();) {
    const size_t n = pos < 20 ? 7 - pos % 7 : 1;  // ragged chunks, then one token at a time
    const size_t take = std::min(n, seq.size() - pos);
    const BatchItem item{std::span(seq).subspan(pos, take), static_cast<int64_t>(pos), table, true};
    m.forward({&item, 1}, cache, logits);
    for (size_t j = 0; j < take; ++j) {
      for (int64_t v = 0; v < V; ++v) {
        // Rows are quantized per token and products accumulate in a fixed order, so the only
        // difference is the attention's summation over a growing cache: 1e-5 relative.
        ASSERT_NEAR(logits[j * V + v], expected[(pos + j) * V + v], 1e-5f * (1 + std::fabs(expected[(pos + j) * V + v])))
            << "position " << pos + j;
      }
    }
    pos += take;
  }
}

TEST_P(QuantizedModes, SingleThreadEqualsTwoThreads) {
  LlamaModel m = model_in(GetParam());
  expect_same_logits_on_one_and_two_threads(m);
}

INSTANTIATE_TEST_SUITE_P(Modes, QuantizedModes, ::testing::Values("accuracy", "performance"));

// Top-1 agreement with bf16 of the same weights, teacher-forced over 512 random tokens.
// Random weights give near-tie logits (a Gaussian cloud with no standout token; this model's
// bf16 mean top-1 probability is 0.12), where small errors flip the argmax: measured here 96.7%
// (accuracy) and 77.1% (performance). llama.cpp's own Q8_0 and Q4_0 flip as often on random
// weights (docs/PERF.md: 93.4% Q8_0 and 52.0% Q4_0 vs its BF16 on the 1B preset's first two
// layers, where we get 94.5% and 72.3%), so the performance issue's 98% / 90% are a trained
// model's figures. The results are bitwise the same on every ISA and thread count, so the bounds
// sit just under the measured values: a change to the formats' rounding or the kernels' sums
// that costs accuracy fails here.
TEST(QuantizedForward, ModesAgreeWithBf16OnTheTestModel) {
  ModelConfig c = testing::tiny_config(2048, true);
  c.dim = 512;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.ffn_dim = 1536;
  const auto seq = tokens(512, 11, 2048);
  const int64_t V = c.vocab_size;
  LlamaModel ref = model_in("bf16", c, 3);
  const auto want = full_logits(ref, seq, kernels::KvDType::F32);
  for (const auto& [mode, min_top1] : {std::pair{"accuracy", 0.96}, std::pair{"performance", 0.76}}) {
    LlamaModel m = model_in(mode, c, 3);
    const auto got = full_logits(m, seq, kernels::KvDType::F32);
    int top1 = 0, top5 = 0;
    for (size_t p = 0; p < seq.size(); ++p) {
      const auto ref_row = want.begin() + static_cast<int64_t>(p) * V;
      const auto row = got.begin() + static_cast<int64_t>(p) * V;
      const int64_t ref_top = std::max_element(ref_row, ref_row + V) - ref_row;
      // The reference's top-1 is in the model's top 5 when fewer than 5 logits beat it.
      const int64_t beaten_by = std::count_if(row, row + V, [&](float x) { return x > row[ref_top]; });
      top1 += beaten_by == 0;
      top5 += beaten_by < 5;
    }
    const double n = static_cast<double>(seq.size());
    EXPECT_GE(top1 / n, min_top1) << mode << " top-1 agreement";
    EXPECT_GE(top5 / n, 0.98) << mode << " top-5 agreement";
    RecordProperty(std::string(mode) + "_top1", std::to_string(top1 / n));
  }
}

}  // namespace
}  // namespace llama3::model

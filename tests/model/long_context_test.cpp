// The forward pass at long context on the tiny model: a prompt prefilled in ragged chunks through
// a shuffled block table, then decoded token by token, gives the logits of one forward over the
// whole sequence (contiguous table), at lengths 1, block - 1, block + 1, 4096 + 7 and ~20k, for
// GQA and MHA and every KV dtype. The two paths tile the work differently (prefill tiles vs
// decode partitions merged, chunk boundaries), so this checks the bookkeeping of every tiling
// against the others; the kernel tests check attention itself against a double reference at
// these lengths, and the reference tests check the whole model against the Python one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "model/forward_helpers.h"
#include "test_support.h"
#include "model/llama_model.h"
#include "model/random_weights.h"

namespace llama3::model {
namespace {

constexpr int64_t kBlock = 16;

struct Shape {
  const char* name;
  int64_t n_heads, n_kv_heads;
  kernels::KvDType kv;
};

ModelConfig config_of(const Shape& s) {
  ModelConfig c = testing::tiny_config(300);
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.max_seq_len = 32768;
  return c;
}

// Logits of the last `tail` + 1 positions of `seq`: one forward over all of it.
std::vector<float> one_pass(LlamaModel& m, const std::vector<int32_t>& seq, kernels::KvDType kv) {
  const int64_t blocks = (static_cast<int64_t>(seq.size()) + kBlock - 1) / kBlock;
  KvCache cache(m.config(), blocks, kBlock, kv);
  const auto table = identity_table(blocks);
  std::vector<float> logits;
  const BatchItem item{seq, 0, table, true};
  m.forward({&item, 1}, cache, logits);
  return logits;
}

class LongContext : public ::testing::TestWithParam<std::tuple<Shape, int64_t>> {};

TEST_P(LongContext, ChunkedPrefillThenDecodeEqualsOnePass) {
  const auto& [shape, length] = GetParam();
  // Under ASan a 20011-token prompt takes ~100 s per shape; it runs the same kernels, page tables
  // and chunk boundaries as the 4103-token case, which does run there.
  if (llama3::testing::kSanitized && length > 8192) GTEST_SKIP() << "20011 tokens: not under the sanitizers (see comment)";
  LlamaModel m(config_of(shape), random_weights(config_of(shape), 5));
  constexpr int64_t kDecode = 3;
  const auto seq = tokens(static_cast<size_t>(length + kDecode), 21);
  const auto want = one_pass(m, seq, shape.kv);
  const int64_t V = m.config().vocab_size;

  // A pool with spare blocks, handed out shuffled; one user with a cached other sequence around
  // it would not change anything (batch independence is tested elsewhere).
  const int64_t blocks = (length + kDecode + kBlock - 1) / kBlock;
  KvCache cache(m.config(), blocks + 5, kBlock, shape.kv);
  std::vector<int32_t> table(static_cast<size_t>(blocks + 5));
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937(9));
  table.resize(static_cast<size_t>(blocks));

  std::vector<float> logits;
  // Ragged chunks: sizes that divide nothing, one of a single token.
  const int64_t chunks[] = {1, 999, 37, 1, 2048, 513};
  int64_t pos = 0;
  for (size_t i = 0; pos < length; ++i) {
    const int64_t n = std::min(chunks[i % std::size(chunks)], length - pos);
    const BatchItem item{std::span(seq).subspan(static_cast<size_t>(pos), static_cast<size_t>(n)), pos, table, false};
    m.forward({&item, 1}, cache, logits);
    pos += n;
  }
  // Prefill's last row and then each decode step against the one-pass row of that position.
  // Only the attention's summation order differs (chunk boundaries, decode partitions merged),
  // fp32 roundings that move the tiny model's logits (|x| < ~5) by ~1e-6.
  for (int64_t step = 0; step <= kDecode; ++step) {
    const int64_t at = length - 1 + step;
    for (int64_t v = 0; v < V; ++v) {
      const float expected = want[static_cast<size_t>(at * V + v)];
      ASSERT_NEAR(logits[static_cast<size_t>(v)], expected, 1e-4f * (1 + std::fabs(expected)))
          << shape.name << " length " << length << " position " << at << " vocab " << v;
    }
    if (step == kDecode) break;
    const BatchItem item{std::span(seq).subspan(static_cast<size_t>(length + step), 1), length + step, table, false};
    m.forward({&item, 1}, cache, logits);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Lengths, LongContext,
    ::testing::Combine(::testing::Values(Shape{"gqa_bf16", 4, 2, kernels::KvDType::BF16},
                                         Shape{"mha_f32", 4, 4, kernels::KvDType::F32},
                                         Shape{"gqa_q8", 4, 2, kernels::KvDType::Q8}),
                       ::testing::Values(int64_t{1}, kBlock - 1, kBlock + 1, int64_t{4096 + 7}, int64_t{20011})),
    [](const auto& info) {
      return std::string(std::get<0>(info.param).name) + "_" + std::to_string(std::get<1>(info.param));
    });

}  // namespace
}  // namespace llama3::model

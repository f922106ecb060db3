// The tensor-parallel forward pass on a real MPI world (run by ctest under mpirun with 1, 2, 4
// and 8 ranks): every rank holds only its shard, and the group computes the whole model's
// logits. Each rank also builds the whole model (the models are tiny) as the reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "mesh_model.h"
#include "model/llama_model.h"
#include "model/random_weights.h"
#include "model/shard_plan.h"
#include "mpi_test_world.h"
#include "runtime/sampler.h"

namespace llama3::model {
namespace {

constexpr int64_t kBlock = 16;
constexpr int kDecodeSteps = 12;

struct Trace {
  std::vector<float> logits;           // every row the run produced, in order
  std::vector<std::vector<int32_t>> generated;  // greedy tokens per user
};

int32_t argmax(const float* row, int64_t n) { return static_cast<int32_t>(std::max_element(row, row + n) - row); }

// Two users: prompts of 13 and 5 tokens prefilled in one batch (every logit row of the first),
// then greedy decode of both together; the same batches a scheduler would form.
Trace run(LlamaModel& m, const ModelConfig& kv_config) {
  const ModelConfig& c = m.config();
  KvCache cache(kv_config, 16, kBlock);
  const std::vector<int32_t> tables[2] = {{0, 1, 2, 3}, {4, 5, 6, 7}};
  std::vector<int32_t> prompts[2] = {{}, {}};
  for (int i = 0; i < 13; ++i) prompts[0].push_back(static_cast<int32_t>((i * 37 + 11) % c.vocab_size));
  for (int i = 0; i < 5; ++i) prompts[1].push_back(static_cast<int32_t>((i * 53 + 7) % c.vocab_size));
  Trace t;
  t.generated.resize(2);
  std::vector<float> logits;
  BatchItem prefill[2] = {{prompts[0], 0, tables[0], true}, {prompts[1], 0, tables[1], false}};
  m.forward(prefill, cache, logits);
  t.logits = logits;
  int64_t pos[2] = {13, 5};
  int32_t next[2] = {argmax(logits.data() + 12 * c.vocab_size, c.vocab_size),
                     argmax(logits.data() + 13 * c.vocab_size, c.vocab_size)};
  for (int step = 0; step < kDecodeSteps; ++step) {
    BatchItem decode[2] = {{std::span(&next[0], 1), pos[0], tables[0]}, {std::span(&next[1], 1), pos[1], tables[1]}};
    for (int u = 0; u < 2; ++u) t.generated[u].push_back(next[u]);
    m.forward(decode, cache, logits);
    t.logits.insert(t.logits.end(), logits.begin(), logits.end());
    for (int u = 0; u < 2; ++u) {
      ++pos[u];
      next[u] = argmax(logits.data() + u * c.vocab_size, c.vocab_size);
    }
  }
  return t;
}

// The largest |got - want| over the first n values, and the largest |want| there.
struct Deviation {
  double max_diff = 0, max_abs = 0;
};
Deviation deviation(const std::vector<float>& got, const std::vector<float>& want, size_t n) {
  Deviation d;
  for (size_t i = 0; i < n; ++i) {
    d.max_diff = std::max(d.max_diff, static_cast<double>(std::fabs(got[i] - want[i])));
    d.max_abs = std::max(d.max_abs, static_cast<double>(std::fabs(want[i])));
  }
  return d;
}

struct Case {
  bool gqa, tied;
  const char* mode;
};

std::string name(const Case& k) {
  return std::string(k.gqa ? "gqa" : "mha") + (k.tied ? "-tied-" : "-untied-") + k.mode;
}

class TensorParallel : public ::testing::TestWithParam<Case> {};

// Logits within tolerance of the whole model, the same greedy tokens, and the same bits when the
// mesh runs again.
TEST_P(TensorParallel, MatchesTheWholeModelAndRepeatsBitwise) {
  const Case k = GetParam();
  const ModelConfig c = testing::mesh_config(k.gqa, k.tied);
  dist::Communicator& group = testing::world_group();
  const PrecisionMap precision = precision_mode(k.mode);

  LlamaModel whole(c, random_weights(c, 11, precision));
  const Trace expected = run(whole, c);

  const ShardPlan plan = shard_plan(c, group.rank(), group.size());
  LlamaModel shard(c, random_weights(c, 11, precision, plan), &group);
  const Trace got = run(shard, shard_kv_config(c, plan));
  const Trace again = run(shard, shard_kv_config(c, plan));

  ASSERT_EQ(got.logits.size(), expected.logits.size());
  EXPECT_EQ(got.generated, expected.generated) << plan.describe();
  const auto [max_diff, max_abs] = deviation(got.logits, expected.logits, got.logits.size());
  // Summing partial products per rank changes the fp32 rounding order only: ~1e-6 relative in
  // bf16 mode. The 8-/4-bit modes quantize each layer's input per 32-wide block, and an input
  // that moved by that rounding can land on the other side of a rounding step: a few 1e-3.
  const double tolerance = (std::string(k.mode) == "bf16" ? 1e-4 : 2e-2) * max_abs;
  EXPECT_LE(max_diff, tolerance) << "largest |logit| " << max_abs;
  if (group.size() == 1) {
    EXPECT_EQ(max_diff, 0.0) << "one rank is the whole model, bit for bit";
  }
  EXPECT_EQ(got.logits, again.logits) << "the same mesh twice must give the same bits";
}

INSTANTIATE_TEST_SUITE_P(Meshes, TensorParallel,
                         ::testing::Values(Case{true, false, "bf16"}, Case{false, true, "bf16"},
                                           Case{true, true, "performance"}, Case{false, false, "accuracy"}),
                         [](const auto& info) {
                           std::string n = name(info.param);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// A bf16 payload for the all-reduces: every layer's partial sums are rounded to bf16, so the
// prompts' logits move by about bf16's rounding of the layer outputs (measured 4.3e-3 to 5.2e-3
// of the largest logit on 2 to 8 ranks; 3e-2 allowed). The decode steps after them may take
// another greedy token at a near tie, so only the prefill's 14 rows are compared. The same mesh
// repeats bitwise, and one rank is the whole model (nothing is sent, nothing rounded).
TEST(TensorParallel, Bf16PayloadStaysCloseToTheWholeModelAndRepeats) {
  const ModelConfig c = testing::mesh_config(true, false);
  dist::Communicator& group = testing::world_group();
  LlamaModel whole(c, random_weights(c, 11));
  const Trace expected = run(whole, c);
  const ShardPlan plan = shard_plan(c, group.rank(), group.size());
  LlamaModel shard(c, random_weights(c, 11, precision_mode("bf16"), plan), &group);
  shard.set_bf16_payload(true);
  const Trace got = run(shard, shard_kv_config(c, plan));
  const Trace again = run(shard, shard_kv_config(c, plan));
  ASSERT_EQ(got.logits.size(), expected.logits.size());
  const auto [max_diff, max_abs] = deviation(got.logits, expected.logits, 14 * static_cast<size_t>(c.vocab_size));
  EXPECT_LE(max_diff, 3e-2 * max_abs);
  std::printf("bf16 payload on %d ranks: prefill logits within %.2g of the largest\n", group.size(), max_diff / max_abs);
  if (group.size() == 1) {
    EXPECT_EQ(max_diff, 0.0);
  } else {
    EXPECT_GT(max_diff, 0.0) << "the payload must actually be rounded";
  }
  EXPECT_EQ(got.logits, again.logits);
  // Half the bytes of the fp32 payload, for the same passes.
  shard.reset_collective_stats();
  run(shard, shard_kv_config(c, plan));
  const int64_t bf16_bytes = shard.collective_stats().all_reduce_bytes;
  shard.set_bf16_payload(false);
  shard.reset_collective_stats();
  run(shard, shard_kv_config(c, plan));
  EXPECT_EQ(shard.collective_stats().all_reduce_bytes, 2 * bf16_bytes);
}

// Serving: rank 0 leads (each forward broadcasts its batch), the others follow, and rank 0 sees
// the same logits as when every rank is handed the batches.
TEST(TensorParallelServing, FollowersComputeWhatTheLeaderAsks) {
  const ModelConfig c = testing::mesh_config(true, false);
  dist::Communicator& group = testing::world_group();
  const ShardPlan plan = shard_plan(c, group.rank(), group.size());
  LlamaModel shard(c, random_weights(c, 5, precision_mode("bf16"), plan), &group);
  const Trace spmd = run(shard, shard_kv_config(c, plan));
  if (group.rank() == 0) {
    shard.lead();
    // A batch the leader refuses is refused before it reaches the followers: they stay in step.
    const int32_t bad = static_cast<int32_t>(c.vocab_size);
    const int32_t table[1] = {0};
    KvCache cache(shard_kv_config(c, plan), 16, kBlock);
    std::vector<float> logits;
    const BatchItem refused[1] = {{std::span(&bad, 1), 0, table}};
    EXPECT_THROW(shard.forward(refused, cache, logits), Error);
    const Trace led = run(shard, shard_kv_config(c, plan));
    shard.release_followers();
    EXPECT_EQ(led.logits, spmd.logits);
  } else {
    shard.follow();
  }
  group.barrier(std::chrono::seconds(30));
}

// Sampling needs each row's top k only: with set_logit_candidates(k) every rank sends its
// vocabulary slice's k largest logits (value and id) instead of the slice, rank 0's rows hold
// them and -inf elsewhere, and a sampler with top_k <= k picks the same tokens as from the
// whole rows, greedy, top-k and nucleus alike.
TEST(TensorParallelServing, TopKCandidatesSampleAsTheWholeRows) {
  const ModelConfig c = testing::mesh_config(true, true);
  dist::Communicator& group = testing::world_group();
  const ShardPlan plan = shard_plan(c, group.rank(), group.size());
  LlamaModel shard(c, random_weights(c, 3, precision_mode("performance"), plan), &group);
  const Trace whole = run(shard, shard_kv_config(c, plan));
  constexpr int64_t k = 4;
  shard.set_logit_candidates(k);
  shard.reset_collective_stats();
  const Trace candidates = run(shard, shard_kv_config(c, plan));
  ASSERT_EQ(candidates.logits.size(), whole.logits.size());
  EXPECT_EQ(candidates.generated, whole.generated);
  const int64_t v = c.vocab_size;
  const int64_t rows = static_cast<int64_t>(whole.logits.size()) / v;
  if (group.size() == 1) {
    EXPECT_EQ(candidates.logits, whole.logits) << "one rank returns whole rows";
    return;
  }
  // Each pass gathers rows x k (value, id) pairs per rank: 14 rows of the prefill, then 2 per step.
  EXPECT_EQ(shard.collective_stats().gather_bytes, rows * k * 8);
  const std::vector<runtime::SamplingParams> params = {
      {0.0f, 1.0f, 0, 1}, {0.9f, 0.95f, static_cast<int>(k), 2}, {1.3f, 1.0f, 3, 3}, {0.7f, 0.5f, 2, 4}};
  int64_t picked_differently = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const std::span<const float> full(whole.logits.data() + r * v, static_cast<size_t>(v));
    const std::span<const float> cand(candidates.logits.data() + r * v, static_cast<size_t>(v));
    int64_t kept = 0;
    for (int64_t i = 0; i < v; ++i) {
      if (std::isinf(cand[static_cast<size_t>(i)]) && cand[static_cast<size_t>(i)] < 0) continue;
      ++kept;
      ASSERT_EQ(cand[static_cast<size_t>(i)], full[static_cast<size_t>(i)]) << "row " << r << " id " << i;
    }
    EXPECT_EQ(kept, k * group.size()) << "row " << r;
    for (const runtime::SamplingParams& p : params) {
      for (uint64_t user = 0; user < 8; ++user) {
        runtime::Sampler a(p, user), b(p, user);
        picked_differently += a.sample(full) != b.sample(cand);
      }
    }
  }
  EXPECT_EQ(picked_differently, 0);
  // The control: a sampler that looks beyond the candidates (no top_k) can pick differently.
  runtime::Sampler wide({1.5f, 1.0f, 0, 9}, 0);
  int64_t outside = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const std::span<const float> full(whole.logits.data() + r * v, static_cast<size_t>(v));
    for (int i = 0; i < 20; ++i) {
      const int32_t t = wide.sample(full);
      outside += std::isinf(candidates.logits[static_cast<size_t>(r * v + t)]);
    }
  }
  EXPECT_GT(outside, 0) << "the candidates must be a real cut of the rows for this test to mean anything";
}

}  // namespace
}  // namespace llama3::model

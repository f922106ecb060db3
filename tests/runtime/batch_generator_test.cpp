#include "runtime/batch_generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "model/random_weights.h"
#include "tiny_model.h"

namespace llama3::runtime {
namespace {

model::ModelConfig tiny_config() { return testing::tiny_config(512); }

class BatchGeneratorTest : public ::testing::Test {
 protected:
  BatchGeneratorTest() : model_(tiny_config(), model::random_weights(tiny_config(), 11)) {}

  std::vector<Request> requests(size_t n) const {
    std::vector<Request> out;
    std::mt19937 rng(3);
    for (size_t i = 0; i < n; ++i) {
      std::vector<int32_t> prompt(3 + (i * 7) % 23);
      for (auto& t : prompt) t = static_cast<int32_t>(rng() % 500);
      out.push_back({prompt, i});
    }
    return out;
  }

  std::vector<UserResult> run(GenerationOptions o, const std::vector<Request>& reqs, int* iterations = nullptr,
                              BatchGenerator::StopPredicate stop = [](int32_t) { return false; }) {
    BatchGenerator g(model_, o, std::move(stop));
    int count = 0;
    auto results = g.run(reqs, [](size_t, int32_t) {}, [&](const IterationStat&) { ++count; });
    if (iterations) *iterations = count;
    EXPECT_EQ(g.allocator().used_blocks(), 0) << "every block is free again after all users finish";
    return results;
  }

  static GenerationOptions greedy(int batch) {
    GenerationOptions o;
    o.batch_size = batch;
    o.max_seq_len = 256;
    o.max_generated_tokens = 12;
    o.block_size = 8;
    o.num_blocks = 512;
    o.sampling.temperature = 0.0f;
    return o;
  }

  model::LlamaModel model_;
};

TEST_F(BatchGeneratorTest, Batch32EqualsEachUserAlone) {
  const auto reqs = requests(32);
  const auto batched = run(greedy(32), reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    const auto alone = run(greedy(1), {reqs[i]});
    ASSERT_EQ(batched[i].generated, alone[0].generated) << "user " << i;
    EXPECT_EQ(batched[i].stop_reason, "max_generated_tokens");
  }
}

TEST_F(BatchGeneratorTest, PagedEqualsContiguousAndShuffledBlocksEqualIdentity) {
  const auto reqs = requests(6);
  GenerationOptions paged = greedy(6);
  GenerationOptions contiguous = greedy(6);
  contiguous.paged = false;
  GenerationOptions shuffled = greedy(6);
  shuffled.shuffle_blocks = true;
  const auto a = run(paged, reqs), b = run(contiguous, reqs), c = run(shuffled, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(a[i].generated, b[i].generated) << "user " << i;
    EXPECT_EQ(a[i].generated, c[i].generated) << "user " << i;
  }
}

TEST_F(BatchGeneratorTest, SeededSamplingDoesNotDependOnTheBatch) {
  const auto reqs = requests(5);
  GenerationOptions o = greedy(5);
  o.sampling = {0.8f, 0.95f, 40, 1234};
  const auto together = run(o, reqs);
  o.batch_size = 2;  // other batch compositions and continuous refills
  o.continuous_batching = true;
  const auto pairs = run(o, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(together[i].generated, pairs[i].generated) << "user " << i;
  o.sampling.seed = 99;
  const auto other_seed = run(o, reqs);
  int differing = 0;
  for (size_t i = 0; i < reqs.size(); ++i) differing += other_seed[i].generated != together[i].generated;
  EXPECT_GT(differing, 0) << "the seed must matter";
}

TEST_F(BatchGeneratorTest, ContinuousBatchingNeedsFewerIterationsThanStaticBatches) {
  // Users end at max_seq_len 30, so a prompt of 10 tokens generates 20 and one of 28 generates
  // 2. Static batches of 2: (20, 2) then (2, 20): ~40 steps. Continuous: the short users pass
  // through the second slot while the first long one runs: ~22 steps.
  std::vector<Request> reqs;
  for (size_t len : {10, 28, 28, 10}) reqs.push_back({std::vector<int32_t>(len, static_cast<int32_t>(len)), reqs.size()});
  GenerationOptions o = greedy(2);
  o.max_seq_len = 30;
  o.max_generated_tokens = 100;
  int static_iterations = 0, continuous_iterations = 0;
  const auto s = run(o, reqs, &static_iterations);
  o.continuous_batching = true;
  const auto c = run(o, reqs, &continuous_iterations);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(s[i].generated, c[i].generated);
    EXPECT_EQ(s[i].stop_reason, "max_seq_len");
  }
  EXPECT_GE(static_iterations, 38);
  EXPECT_LE(continuous_iterations, 24);
}

TEST_F(BatchGeneratorTest, StopTokenAndMaxSeqLenEndAUser) {
  const auto reqs = requests(3);
  GenerationOptions o = greedy(3);
  const auto free_run = run(o, reqs);
  const int32_t stop = free_run[1].generated[4];
  const auto stopped = run(o, reqs, nullptr, [stop](int32_t t) { return t == stop; });
  EXPECT_EQ(stopped[1].stop_reason, "stop_token");
  EXPECT_EQ(stopped[1].generated.back(), stop);
  EXPECT_LE(stopped[1].generated.size(), 5u);
  o.max_seq_len = static_cast<int64_t>(reqs[0].prompt_tokens.size()) + 4;
  o.max_generated_tokens = 100;
  const auto clipped = run(o, {reqs[0]});
  EXPECT_EQ(clipped[0].stop_reason, "max_seq_len");
  EXPECT_EQ(clipped[0].generated.size(), 4u);
}

TEST_F(BatchGeneratorTest, OutOfBlocksPreemptsAndKeepsTheText) {
  const auto reqs = requests(6);
  GenerationOptions roomy = greedy(6);
  roomy.max_generated_tokens = 30;
  GenerationOptions tight = roomy;
  tight.num_blocks = 12;  // 6 users need up to 7 blocks of 8 each: they cannot all fit
  BatchGenerator g(model_, tight, [](int32_t) { return false; });
  const auto squeezed = g.run(reqs, [](size_t, int32_t) {}, [](const IterationStat&) {});
  EXPECT_GT(g.stats().preemptions, 0);
  EXPECT_EQ(g.allocator().used_blocks(), 0);
  const auto expected = run(roomy, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(squeezed[i].generated, expected[i].generated) << "user " << i;
}

TEST_F(BatchGeneratorTest, AUserThatCannotFitAloneIsAnError) {
  GenerationOptions o = greedy(1);
  o.num_blocks = 2;  // 16 positions; the prompt alone is longer
  std::vector<Request> reqs = {{std::vector<int32_t>(20, 5), 0}};
  EXPECT_THAT([&] { run(o, reqs); }, ::testing::ThrowsMessage<Error>(::testing::HasSubstr("out of KV blocks")));
}

TEST_F(BatchGeneratorTest, StressRecyclesUsersInBoundedBlocks) {
  const auto reqs = requests(4);
  GenerationOptions o = greedy(4);
  o.stress_test = true;
  o.max_seq_len = 40;
  o.max_generated_tokens = 300;
  o.num_blocks = 4 * 5;  // exactly max_seq_len per user
  BatchGenerator g(model_, o, [](int32_t) { return false; });
  const auto results = g.run(reqs, [](size_t, int32_t) {}, [](const IterationStat&) {});
  for (const auto& r : results) {
    EXPECT_EQ(r.generated.size(), 300u);
    EXPECT_GE(r.recycles, 5);
  }
  EXPECT_LE(g.stats().peak_blocks, 20);
  EXPECT_EQ(g.stats().preemptions, 0);
}

}  // namespace
}  // namespace llama3::runtime

#include "runtime/scheduler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "model/random_weights.h"
#include "runtime/sequence_runner.h"
#include "tiny_model.h"

namespace llama3::runtime {
namespace {

model::ModelConfig tiny_config() { return testing::tiny_config(512); }

struct Outcome {
  std::vector<int32_t> tokens;
  std::optional<ScheduledResult> result;
};

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : model_(tiny_config(), model::random_weights(tiny_config(), 11)) {}

  static SchedulerOptions options() {
    SchedulerOptions o;
    o.max_batch = 8;
    o.max_seq_len = 512;
    o.block_size = 8;
    o.prefill_chunk = 16;
    o.step_tokens = 24;
    o.num_blocks = 256;
    return o;
  }

  static std::vector<int32_t> prompt(size_t length, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int32_t> p(length);
    for (auto& t : p) t = static_cast<int32_t>(rng() % 500);
    return p;
  }

  ScheduledRequest request(uint64_t id, std::vector<int32_t> p, int64_t max_tokens = 10) {
    ScheduledRequest r;
    r.id = id;
    r.prompt = std::move(p);
    r.sampling = {0.8f, 0.95f, 0, 7};  // sampled, not greedy: the random stream must line up too
    r.sampler_stream = id;
    r.max_tokens = max_tokens;
    r.on_token = [this, id](const ScheduledToken& t) { out_[id].tokens.push_back(t.token); };
    r.on_done = [this, id](const ScheduledResult& res) { out_[id].result = res; };
    return r;
  }

  void run(Scheduler& s, int max_steps = 10000) {
    for (int i = 0; i < max_steps && !s.idle(); ++i) s.step();
    ASSERT_TRUE(s.idle()) << "the scheduler did not finish its work";
  }

  // The same request run alone, straight through the model (no scheduler, no pool): prefilled in
  // the same chunks, then one token at a time, sampled with the same random stream.
  std::vector<int32_t> alone(const std::vector<int32_t>& p, uint64_t stream, int64_t max_tokens = 10,
                             SamplingParams sampling = {0.8f, 0.95f, 0, 7}) {
    SequenceRunner runner(model_, 1, static_cast<int64_t>(p.size()) + max_tokens);
    Sampler sampler(sampling, stream);
    std::vector<float> logits;
    runner.prefill(0, p, 16, false, logits);
    std::vector<int32_t> out;
    for (;;) {
      out.push_back(sampler.sample(logits));
      if (static_cast<int64_t>(out.size()) == max_tokens) return out;
      runner.decode(std::span(&out.back(), 1), logits);
    }
  }

  model::LlamaModel model_;
  std::map<uint64_t, Outcome> out_;
};

TEST_F(SchedulerTest, EachRequestGetsTheTextItGetsAlone) {
  Scheduler s(model_, options(), nullptr);
  std::vector<std::vector<int32_t>> prompts;
  for (uint64_t i = 0; i < 6; ++i) {
    prompts.push_back(prompt(5 + 13 * i, static_cast<uint32_t>(i)));
    s.add(request(i, prompts.back()));
  }
  run(s);
  for (uint64_t i = 0; i < 6; ++i) {
    ASSERT_TRUE(out_[i].result.has_value());
    EXPECT_EQ(out_[i].result->reason, StopReason::length);
    EXPECT_EQ(out_[i].tokens, alone(prompts[i], i)) << "request " << i;
  }
  EXPECT_EQ(s.pool().used_blocks(), 0);
}

TEST_F(SchedulerTest, ThirtyTwoTogetherGetWhatEachGetsAloneAndTheSeedMatters) {
  SchedulerOptions o = options();
  o.max_batch = 32;
  o.step_tokens = 32 * 16;
  Scheduler s(model_, o, nullptr);
  std::vector<std::vector<int32_t>> prompts;
  for (uint64_t i = 0; i < 32; ++i) {
    prompts.push_back(prompt(3 + (i * 7) % 23, 300 + static_cast<uint32_t>(i)));
    s.add(request(i, prompts.back(), 6));
  }
  run(s);
  int differing = 0;
  for (uint64_t i = 0; i < 32; ++i) {
    ASSERT_TRUE(out_[i].result.has_value());
    EXPECT_EQ(out_[i].tokens, alone(prompts[i], i, 6)) << "request " << i;
    differing += out_[i].tokens != alone(prompts[i], i, 6, {0.8f, 0.95f, 0, 99});
  }
  EXPECT_GT(differing, 0) << "the seed must matter";
}

TEST_F(SchedulerTest, OneBlockPerRequestGivesTheSameTextAsSmallBlocks) {
  // The demo's --paged_attention false: a contiguous cache is the page table of one block of
  // max_seq_len per request (prefix caching off: its chunks need not be whole blocks).
  SchedulerOptions o = options();
  o.block_size = o.max_seq_len;
  o.num_blocks = 5;
  o.prefix_caching = false;
  Scheduler s(model_, o, nullptr);
  std::vector<std::vector<int32_t>> prompts;
  for (uint64_t i = 0; i < 5; ++i) {
    prompts.push_back(prompt(9 + 10 * i, 400 + static_cast<uint32_t>(i)));
    s.add(request(i, prompts.back()));
  }
  run(s);
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(out_[i].tokens, alone(prompts[i], i)) << "request " << i;
  EXPECT_EQ(s.counters().preemptions, 0);
}

TEST_F(SchedulerTest, LateArrivalsJoinTheRunningBatchWithoutChangingAnyText) {
  Scheduler s(model_, options(), nullptr);
  std::vector<std::vector<int32_t>> prompts;
  for (uint64_t i = 0; i < 5; ++i) prompts.push_back(prompt(7 + 11 * i, 100 + static_cast<uint32_t>(i)));
  s.add(request(0, prompts[0], 20));
  for (int k = 0; k < 3; ++k) s.step();
  const size_t before = out_[0].tokens.size();
  EXPECT_GT(before, 0u);
  for (uint64_t i = 1; i < 5; ++i) s.add(request(i, prompts[i], 20));
  s.step();
  EXPECT_EQ(s.running(), 5) << "newcomers join at the next step";
  run(s);
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(out_[i].tokens, alone(prompts[i], i, 20)) << "request " << i;
}

TEST_F(SchedulerTest, ALongPromptIsPrefilledInChunksBetweenDecodeSteps) {
  Scheduler s(model_, options(), nullptr);  // budget 24 tokens per step, chunks of 16
  s.add(request(0, prompt(5, 1), 40));
  s.step();
  ASSERT_EQ(out_[0].tokens.size(), 1u);
  s.add(request(1, prompt(200, 2), 5));
  // 200 tokens in chunks of 16 take 13 steps; the first request gains a token in every one.
  for (int k = 0; k < 13; ++k) {
    const size_t had = out_[0].tokens.size();
    s.step();
    EXPECT_EQ(out_[0].tokens.size(), had + 1) << "step " << k << ": the decoding request was stalled";
  }
  EXPECT_EQ(out_[1].tokens.size(), 1u) << "the long prompt's first token comes after its last chunk";
  run(s);
  EXPECT_EQ(out_[1].tokens, alone(prompt(200, 2), 1, 5));
}

TEST_F(SchedulerTest, AStaticBatchPrefillsEveryPromptBeforeAnyoneDecodes) {
  SchedulerOptions o = options();  // budget 24 tokens per step, chunks of 16
  o.decode_waits_for_prefill = true;
  Scheduler s(model_, o, nullptr);
  std::vector<StepRecord> steps;
  s.set_step_observer([&](const StepRecord& r) { steps.push_back(r); });
  s.add(request(0, prompt(5, 1), 6));
  s.add(request(1, prompt(60, 2), 6));
  run(s);
  // 65 prompt tokens: 5 + 16 in the first step, then chunks of 16, 16, 12; decoding only after.
  size_t first_decode = steps.size();
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].decode_tokens > 0 && first_decode == steps.size()) first_decode = i;
    if (i >= first_decode) {
      EXPECT_EQ(steps[i].prefill_tokens, 0) << "step " << i << " mixed prefill into decode";
    }
  }
  int64_t prefilled = 0;
  for (size_t i = 0; i < first_decode; ++i) prefilled += steps[i].prefill_tokens;
  EXPECT_EQ(prefilled, 65);
  EXPECT_EQ(first_decode, 4u);
  EXPECT_EQ(out_[0].tokens, alone(prompt(5, 1), 0, 6)) << "waiting does not change the text";
  EXPECT_EQ(out_[1].tokens, alone(prompt(60, 2), 1, 6));
}

TEST_F(SchedulerTest, APromptSharingAPrefixReusesItsWholeChunksAndKeepsItsText) {
  SchedulerOptions o = options();
  Scheduler s(model_, o, nullptr);
  std::vector<int32_t> system = prompt(40, 9);
  std::vector<int32_t> a = system, b = system;
  a.insert(a.end(), {1, 2, 3, 4, 5});
  b.insert(b.end(), {6, 7, 8});
  s.add(request(0, a));
  run(s);
  s.add(request(1, b));
  run(s);
  ASSERT_TRUE(out_[1].result.has_value());
  // 40 shared tokens = 5 full blocks of 8; kept: whole chunks of 16 = 32 tokens.
  EXPECT_EQ(out_[1].result->cached_prompt_tokens, 32);
  EXPECT_EQ(out_[0].result->cached_prompt_tokens, 0);
  EXPECT_EQ(s.counters().prompt_tokens_cached, 32);
  EXPECT_EQ(out_[1].tokens, alone(b, 1)) << "a cache hit must not change the text";
  EXPECT_EQ(s.pool().used_blocks(), 0);
  EXPECT_GT(s.pool().cached_blocks(), 0) << "finished requests leave their full blocks findable";

  // Without prefix caching nothing is reused.
  o.prefix_caching = false;
  Scheduler off(model_, o, nullptr);
  off.add(request(2, a));
  run(off);
  ScheduledRequest again = request(3, b);
  again.sampler_stream = 1;  // request 1's random stream
  off.add(std::move(again));
  run(off);
  EXPECT_EQ(out_[3].result->cached_prompt_tokens, 0);
  EXPECT_EQ(out_[3].tokens, out_[1].tokens);
}

TEST_F(SchedulerTest, AConversationsNextTurnReusesEveryCachedBlock) {
  Scheduler s(model_, options(), nullptr);  // blocks of 8, chunks of 16
  std::vector<int32_t> first = prompt(45, 19);
  s.add(request(0, first, 4));
  run(s);
  // The next turn: the first prompt, its reply, and a new message.
  std::vector<int32_t> next = first;
  next.insert(next.end(), out_[0].tokens.begin(), out_[0].tokens.end());
  next.insert(next.end(), {7, 8, 9});
  ScheduledRequest r = request(1, next, 4);
  r.reuse_all_cached_blocks = true;
  s.add(std::move(r));
  run(s);
  ASSERT_TRUE(out_[1].result.has_value());
  // 48 positions were computed (45 prompt + 3 of the 4 reply tokens): 6 full blocks, all reused
  // (whole chunks only would keep 32).
  EXPECT_EQ(out_[1].result->cached_prompt_tokens, 48);
  EXPECT_EQ(out_[1].result->reason, StopReason::length);
}

TEST_F(SchedulerTest, ARequestAdmittedBesideAnotherFindsThePrefixItComputedMeanwhile) {
  Scheduler s(model_, options(), nullptr);  // budget 24, chunks of 16: only one chunk a step
  std::vector<int32_t> a = prompt(40, 21), b = a;
  a.insert(a.end(), {1, 2, 3, 4, 5});
  b.insert(b.end(), {6, 7, 8});
  s.add(request(0, a));
  s.add(request(1, b));
  run(s);
  ASSERT_TRUE(out_[1].result.has_value());
  EXPECT_GE(out_[1].result->cached_prompt_tokens, 16) << "request 1 waited a step; request 0 had computed a chunk";
  EXPECT_EQ(out_[1].tokens, alone(b, 1));
  EXPECT_EQ(out_[0].tokens, alone(a, 0));
}

TEST_F(SchedulerTest, CancelFinishesTheRequestAndFreesItsBlocksAtOnce) {
  Scheduler s(model_, options(), nullptr);
  s.add(request(0, prompt(30, 3), 100));
  s.add(request(1, prompt(20, 4), 100));
  s.add(request(2, prompt(20, 5), 100));
  for (int k = 0; k < 4; ++k) s.step();
  const int32_t used = s.pool().used_blocks();
  EXPECT_TRUE(s.cancel(1));
  EXPECT_LT(s.pool().used_blocks(), used);
  ASSERT_TRUE(out_[1].result.has_value());
  EXPECT_EQ(out_[1].result->reason, StopReason::cancelled);
  EXPECT_FALSE(s.cancel(1)) << "a finished request is unknown";
  s.cancel_all();
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(s.pool().used_blocks(), 0);
  EXPECT_EQ(out_[2].result->reason, StopReason::cancelled);
  EXPECT_EQ(s.counters().cancelled, 3);
}

TEST_F(SchedulerTest, OutOfBlocksPreemptsTheYoungestAndEveryTextStaysTheSame) {
  SchedulerOptions o = options();
  o.num_blocks = 14;  // 112 positions for 4 requests that end near 40 tokens each
  o.prefix_caching = false;
  Scheduler s(model_, o, nullptr);
  std::vector<std::vector<int32_t>> prompts;
  for (uint64_t i = 0; i < 4; ++i) {
    prompts.push_back(prompt(20 + i, 50 + static_cast<uint32_t>(i)));
    s.add(request(i, prompts.back(), 20));
  }
  run(s);
  EXPECT_GT(s.counters().preemptions, 0);
  for (uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(out_[i].result.has_value());
    EXPECT_EQ(out_[i].result->reason, StopReason::length);
    EXPECT_EQ(out_[i].tokens, alone(prompts[i], i, 20)) << "request " << i;
  }
  EXPECT_EQ(s.pool().used_blocks(), 0);
}

TEST_F(SchedulerTest, ARequestTheWholePoolCannotHoldFailsWithBothFigures) {
  SchedulerOptions o = options();
  o.num_blocks = 4;  // 32 positions
  Scheduler s(model_, o, nullptr);
  s.add(request(0, prompt(20, 6), 50));
  run(s);
  ASSERT_TRUE(out_[0].result.has_value());
  EXPECT_EQ(out_[0].result->reason, StopReason::error);
  EXPECT_NE(out_[0].result->error.find("the pool has 4"), std::string::npos) << out_[0].result->error;
  EXPECT_EQ(s.pool().used_blocks(), 0);
}

// A leak (blocks taken and never given back, here behind the scheduler's back) must not make the
// scheduler spin: requests that no longer fit fail with the blocks in use, free and leaked named,
// smaller ones still run, and all the work ends within a bounded number of steps.
TEST_F(SchedulerTest, LeakedBlocksAreNamedAndNothingSpins) {
  SchedulerOptions o = options();
  o.num_blocks = 10;  // 80 positions
  Scheduler s(model_, o, nullptr);
  PrefixBlockPool& pool = s.pool_for_testing();
  for (int i = 0; i < 6; ++i) pool.allocate();  // 6 blocks leaked: 4 left, 32 positions
  for (uint64_t id = 0; id < 3; ++id) s.add(request(id, prompt(30, static_cast<uint32_t>(id + 1)), 20));  // 50 positions
  s.add(request(3, prompt(10, 4), 5));  // 15 positions: still fits
  run(s, 200);
  for (uint64_t id = 0; id < 3; ++id) {
    ASSERT_TRUE(out_[id].result.has_value()) << id;
    EXPECT_EQ(out_[id].result->reason, StopReason::error) << id;
    const std::string& e = out_[id].result->error;
    EXPECT_NE(e.find("the pool has 10 ("), std::string::npos) << e;
    EXPECT_NE(e.find(" in use, "), std::string::npos) << e;
    EXPECT_NE(e.find("; 6 of them are held by no request (leaked blocks: a bug)"), std::string::npos) << e;
  }
  ASSERT_TRUE(out_[3].result.has_value());
  EXPECT_EQ(out_[3].result->reason, StopReason::length);
  EXPECT_EQ(s.pool().used_blocks(), 6) << "only the leaked blocks stay in use";
}

TEST_F(SchedulerTest, StopTokensEndARequestAndMaxSeqLenCapsIt) {
  Scheduler s(model_, options(), nullptr);
  const auto p = prompt(12, 8);
  const auto free_run = alone(p, 0, 10);
  ScheduledRequest r = request(0, p);
  r.stop_tokens = {free_run[3]};
  s.add(std::move(r));
  run(s);
  EXPECT_EQ(out_[0].result->reason, StopReason::stop);
  const size_t first_stop = static_cast<size_t>(std::find(free_run.begin(), free_run.end(), free_run[3]) - free_run.begin());
  EXPECT_EQ(out_[0].result->completion_tokens, static_cast<int64_t>(first_stop) + 1) << "the stop token counts";
  EXPECT_EQ(out_[0].tokens, std::vector<int32_t>(free_run.begin(), free_run.begin() + static_cast<std::ptrdiff_t>(first_stop)))
      << "the stop token itself is not emitted";

  SchedulerOptions o = options();
  o.max_seq_len = 16;
  Scheduler small(model_, o, nullptr);
  small.add(request(1, prompt(12, 8), 100));
  run(small);
  EXPECT_EQ(out_[1].result->reason, StopReason::length);
  EXPECT_EQ(out_[1].result->completion_tokens, 4);
}

TEST_F(SchedulerTest, TheStepObserverSeesEachStepsDecodeAndPrefillTokens) {
  Scheduler s(model_, options(), nullptr);  // budget 24 tokens per step, chunks of 16, blocks of 8
  std::vector<StepRecord> steps;
  s.set_step_observer([&](const StepRecord& r) { steps.push_back(r); });
  s.add(request(0, prompt(20, 31), 3));
  run(s);
  // 20 prompt tokens: a chunk of 16, then 4 (which yield the first token), then 2 decode steps.
  ASSERT_EQ(steps.size(), 4u);
  const int64_t prefill[] = {16, 4, 0, 0};
  const int decode[] = {0, 0, 1, 1};
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].step, static_cast<int64_t>(i));
    EXPECT_EQ(steps[i].prefill_tokens, prefill[i]) << i;
    EXPECT_EQ(steps[i].decode_tokens, decode[i]) << i;
    EXPECT_GT(steps[i].ms, 0.0);
  }
  EXPECT_EQ(steps[0].kv_blocks_used, 2) << "16 positions in blocks of 8";
  EXPECT_EQ(steps[3].kv_blocks_used, 3) << "22 positions";
  EXPECT_EQ(steps[3].running, 0) << "the request finished in the last step";
}

TEST_F(SchedulerTest, NonFiniteLogitsFailTheRequestWhenChecked) {
  model::ModelWeights w = model::random_weights(tiny_config(), 11);
  w.norm[3] = std::numeric_limits<float>::quiet_NaN();  // every logit row becomes NaN
  model::LlamaModel broken(tiny_config(), std::move(w));
  SchedulerOptions o = options();
  o.check_finite = true;
  Scheduler s(broken, o, nullptr);
  s.add(request(0, prompt(10, 32)));
  run(s);
  ASSERT_TRUE(out_[0].result.has_value());
  EXPECT_EQ(out_[0].result->reason, StopReason::error);
  EXPECT_NE(out_[0].result->error.find("non-finite logits"), std::string::npos) << out_[0].result->error;
  EXPECT_NE(out_[0].result->error.find("position 9"), std::string::npos) << out_[0].result->error;
  EXPECT_TRUE(out_[0].tokens.empty());
  EXPECT_EQ(s.pool().used_blocks(), 0);
  EXPECT_EQ(s.counters().logits_checked, 1);
  EXPECT_EQ(s.counters().logits_nonfinite, 1);
}

TEST_F(SchedulerTest, FiniteChecksAreCountedOncePerSampledTokenAndOnlyWhenAsked) {
  for (const bool check : {false, true}) {
    SchedulerOptions o = options();
    o.check_finite = check;
    Scheduler s(model_, o, nullptr);
    s.add(request(0, prompt(10, 33), 5));
    s.add(request(1, prompt(20, 34), 3));
    run(s);
    EXPECT_EQ(s.counters().generated_tokens, 8);
    EXPECT_EQ(s.counters().logits_checked, check ? 8 : 0);
    EXPECT_EQ(s.counters().logits_nonfinite, 0);
  }
}

TEST_F(SchedulerTest, LogprobsAreTheLogSoftmaxOfTheRawLogits) {
  Scheduler s(model_, options(), nullptr);
  ScheduledRequest r = request(0, prompt(9, 12), 3);
  r.top_logprobs = 5;
  std::vector<ScheduledToken> events;
  r.on_token = [&](const ScheduledToken& t) { events.push_back(t); };
  s.add(std::move(r));
  run(s);
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) {
    ASSERT_TRUE(e.has_logprob);
    ASSERT_EQ(e.top.size(), 5u);
    EXPECT_LE(e.logprob, 0.0f);
    for (size_t i = 1; i < e.top.size(); ++i) EXPECT_GE(e.top[i - 1].second, e.top[i].second);
    EXPECT_LE(e.logprob, e.top[0].second);
    double mass = 0.0;
    for (const auto& [id, lp] : e.top) mass += std::exp(lp);
    EXPECT_LE(mass, 1.0 + 1e-5);
  }
}

// What each step asks the model for (on a mesh, the logit candidates each rank sends): the
// largest top_k of the requests that sample, 1 for argmax alone, and whole rows as soon as one
// request samples without top_k or wants log-probabilities, or rows are checked for NaN/Inf.
TEST_F(SchedulerTest, EachStepAsksForTheLogitCandidatesItsSamplingNeeds) {
  auto candidates_of = [&](std::vector<std::pair<SamplingParams, int>> requests, bool check_finite) {
    SchedulerOptions o = options();
    o.check_finite = check_finite;
    Scheduler s(model_, o, nullptr);
    for (size_t i = 0; i < requests.size(); ++i) {
      ScheduledRequest r = request(i, prompt(6, static_cast<uint32_t>(i)), 2);
      r.sampling = requests[i].first;
      r.top_logprobs = requests[i].second;
      s.add(std::move(r));
    }
    s.step();
    return model_.logit_candidates();
  };
  const SamplingParams greedy{0.0f, 1.0f, 0, 1}, top5{0.8f, 0.9f, 5, 1}, top40{1.0f, 1.0f, 40, 1},
      all{0.8f, 0.9f, 0, 1};
  EXPECT_EQ(candidates_of({{greedy, -1}}, false), 1);
  EXPECT_EQ(candidates_of({{greedy, -1}, {top5, -1}}, false), 5);
  EXPECT_EQ(candidates_of({{top40, -1}, {top5, -1}}, false), 40);
  EXPECT_EQ(candidates_of({{top5, -1}, {all, -1}}, false), 0);
  EXPECT_EQ(candidates_of({{top5, 2}}, false), 0);
  EXPECT_EQ(candidates_of({{greedy, -1}}, true), 0);
}

}  // namespace
}  // namespace llama3::runtime

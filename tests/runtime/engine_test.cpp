// The public API (include/llama3/engine.h) on the 1B preset cut to one layer, random weights.
#include "llama3/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

namespace llama3 {
namespace {

EngineOptions one_layer(int max_batch = 4, int64_t max_queue = 8) {
  EngineOptions o;
  o.model.weights = "random";
  o.model.layers = 1;
  o.max_batch = max_batch;
  o.max_queue = max_queue;
  o.max_seq_len = 1024;
  o.kv_blocks = 256;
  return o;
}

// Collects one request's events; wait() blocks until on_done.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  std::string text;
  std::optional<Completion> done;

  RequestCallbacks callbacks() {
    return {[this](const TokenEvent& e) {
              const std::lock_guard lock(mu);
              tokens.push_back(e.token);
              text += e.text;
            },
            [this](const Completion& c) {
              {
                const std::lock_guard lock(mu);
                done = c;
              }
              cv.notify_all();
            }};
  }
  Completion wait() {
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return done.has_value(); })) << "no on_done";
    return done.value_or(Completion{});
  }
};

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = new Engine(one_layer()); }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  static Engine* engine_;
};
Engine* EngineTest::engine_ = nullptr;

GenerationRequest text_request(const std::string& text, int64_t max_tokens = 8) {
  GenerationRequest r;
  r.prompt_text = text;
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  return r;
}

TEST_F(EngineTest, ATextPromptStreamsTokensWhoseTextIsTheirDecoding) {
  Collector c;
  engine_->submit(text_request("The capital of France is"), c.callbacks());
  const Completion done = c.wait();
  EXPECT_EQ(done.reason, FinishReason::length);
  EXPECT_EQ(done.completion_tokens, 8);
  EXPECT_EQ(c.tokens.size(), 8u);
  EXPECT_EQ(done.prompt_tokens, static_cast<int64_t>(engine_->encode_prompt(text_request("The capital of France is")).size()));
  EXPECT_EQ(c.text, engine_->decode(c.tokens));
  EXPECT_GT(done.ttft_ms, 0.0);
  EXPECT_EQ(engine_->model_info().name, "Llama-3.2-1B");
  EXPECT_EQ(engine_->model_info().n_layers, 1);
}

TEST_F(EngineTest, ChatMessagesUseTheLlama3ChatFormat) {
  GenerationRequest r;
  r.messages = {{"system", "Be brief."}, {"user", "Hi"}};
  const auto ids = engine_->encode_prompt(r);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 128000);
  EXPECT_EQ(engine_->decode({ids.end() - 4, ids.end()}), "<|start_header_id|>assistant<|end_header_id|>\n\n");
  r.messages = {{"wizard", "x"}};
  EXPECT_THROW(engine_->encode_prompt(r), EngineError);
}

TEST_F(EngineTest, TheSameSeedGivesTheSameTextWhateverElseRuns) {
  GenerationRequest r = text_request("Once upon a time", 12);
  r.sampling = {0.9f, 0.95f, 0, 1234};
  Collector alone;
  engine_->submit(r, alone.callbacks());
  alone.wait();
  std::vector<std::unique_ptr<Collector>> others;
  Collector again;
  for (int i = 0; i < 3; ++i) {
    others.push_back(std::make_unique<Collector>());
    GenerationRequest o = text_request("Something else entirely, number " + std::to_string(i), 20);
    o.sampling.seed = static_cast<uint64_t>(i);
    engine_->submit(o, others.back()->callbacks());
  }
  engine_->submit(r, again.callbacks());
  again.wait();
  for (auto& o : others) o->wait();
  EXPECT_EQ(again.tokens, alone.tokens);
}

TEST_F(EngineTest, InvalidRequestsAreRefusedWithoutCallbacks) {
  bool called = false;
  RequestCallbacks cb{[&](const TokenEvent&) { called = true; }, [&](const Completion&) { called = true; }};
  auto kind_of = [&](GenerationRequest r) {
    try {
      engine_->submit(std::move(r), cb);
    } catch (const EngineError& e) {
      EXPECT_FALSE(std::string(e.what()).empty());
      return e.kind();
    }
    ADD_FAILURE() << "accepted";
    return EngineError::Kind::shutting_down;
  };
  GenerationRequest none;
  EXPECT_EQ(kind_of(none), EngineError::Kind::invalid_request) << "no prompt";
  GenerationRequest both = text_request("x");
  both.prompt_tokens = {1, 2};
  EXPECT_EQ(kind_of(both), EngineError::Kind::invalid_request) << "two prompts";
  GenerationRequest bad_id;
  bad_id.prompt_tokens = {1, 128256};
  EXPECT_EQ(kind_of(bad_id), EngineError::Kind::invalid_request);
  GenerationRequest long_prompt;
  long_prompt.prompt_tokens.assign(1024, 100);
  EXPECT_EQ(kind_of(long_prompt), EngineError::Kind::invalid_request) << "prompt fills the context";
  GenerationRequest zero = text_request("x", 0);
  EXPECT_EQ(kind_of(zero), EngineError::Kind::invalid_request);
  GenerationRequest temp = text_request("x");
  temp.sampling.temperature = -1.0f;
  EXPECT_EQ(kind_of(temp), EngineError::Kind::invalid_request);
  GenerationRequest top = text_request("x");
  top.top_logprobs = 21;
  EXPECT_EQ(kind_of(top), EngineError::Kind::invalid_request);
  EXPECT_FALSE(called);
}

TEST_F(EngineTest, CancelEndsARequestAndFreesItsBlocks) {
  Collector c;
  std::promise<void> first;
  bool signalled = false;
  RequestCallbacks cb = c.callbacks();
  auto on_token = cb.on_token;
  cb.on_token = [&, on_token](const TokenEvent& e) {
    on_token(e);
    if (!signalled) {
      signalled = true;
      first.set_value();
    }
  };
  const uint64_t id = engine_->submit(text_request("Count to a thousand:", 900), cb);
  first.get_future().wait();
  engine_->cancel(id);
  const Completion done = c.wait();
  EXPECT_EQ(done.reason, FinishReason::cancelled);
  EXPECT_LT(done.completion_tokens, 900);
  for (int i = 0; i < 100 && engine_->metrics().requests_running > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const EngineMetrics m = engine_->metrics();
  EXPECT_EQ(m.requests_running, 0);
  EXPECT_EQ(m.kv_blocks_used, 0);
  engine_->cancel(id);  // finished: ignored
  engine_->cancel(987654);
}

TEST_F(EngineTest, TheStopTokenIsReportedEvenWhenItHasNoText) {
  GenerationRequest free_run = text_request("Count with me: one, two,", 6);
  free_run.sampling.temperature = 0.0f;
  Collector a;
  engine_->submit(free_run, a.callbacks());
  a.wait();
  ASSERT_EQ(a.tokens.size(), 6u);
  GenerationRequest stopped = free_run;
  stopped.stop_tokens = {a.tokens[2]};
  Collector b;
  engine_->submit(stopped, b.callbacks());
  const Completion done = b.wait();
  EXPECT_EQ(done.reason, FinishReason::stop);
  ASSERT_TRUE(done.stop_token.has_value());
  EXPECT_EQ(*done.stop_token, a.tokens[2]);
  const auto first = std::find(a.tokens.begin(), a.tokens.end(), a.tokens[2]) - a.tokens.begin();
  EXPECT_EQ(done.completion_tokens, first + 1);
  EXPECT_EQ(b.tokens, std::vector<int32_t>(a.tokens.begin(), a.tokens.begin() + first))
      << "a user-given stop token's text is not part of the reply";
}

// Every step reaches on_step; together they account for every prompt position computed and every
// token decoded.
TEST(Engine, TheStepCallbackAccountsForEveryToken) {
  struct Totals {
    std::mutex mu;
    int64_t steps = 0, prefill = 0, decode = 0, peak_blocks = 0;
  } totals;
  EngineOptions o = one_layer();
  o.prefix_caching = false;
  o.on_step = [&totals](const StepStats& s) {
    const std::lock_guard lock(totals.mu);
    EXPECT_EQ(s.step, totals.steps);
    ++totals.steps;
    totals.prefill += s.prefill_tokens;
    totals.decode += s.decode_tokens;
    totals.peak_blocks = std::max(totals.peak_blocks, s.kv_blocks_used);
  };
  int64_t prompt_tokens = 0, generated = 0, steps = 0;
  {
    Engine engine(o);
    std::vector<std::unique_ptr<Collector>> collectors;
    for (const char* text : {"One", "Two words", "A prompt of a few more words than those"}) {
      collectors.push_back(std::make_unique<Collector>());
      engine.submit(text_request(text, 7), collectors.back()->callbacks());
    }
    for (auto& c : collectors) {
      const Completion done = c->wait();
      prompt_tokens += done.prompt_tokens;
      generated += done.completion_tokens;
    }
    steps = engine.metrics().steps;
  }  // joined: the last step's callback has returned
  EXPECT_EQ(totals.steps, steps);
  EXPECT_EQ(totals.prefill, prompt_tokens);
  EXPECT_EQ(totals.decode, generated - 3) << "each request's first token comes from its prefill";
  EXPECT_GT(totals.peak_blocks, 0);
}

// The original demo's start_pos: prompts run at shifted RoPE positions, so the text changes, and
// the shift counts against the model's context.
TEST(Engine, APositionOffsetShiftsRopePositions) {
  auto greedy = [](int64_t offset) {
    EngineOptions o = one_layer();
    o.position_offset = offset;
    Engine engine(o);
    GenerationRequest r = text_request("The capital of France is", 8);
    r.sampling.temperature = 0.0f;
    Collector c;
    engine.submit(r, c.callbacks());
    c.wait();
    return c.tokens;
  };
  const auto plain = greedy(0);
  EXPECT_EQ(greedy(5000), greedy(5000));
  EXPECT_NE(greedy(5000), plain);
  EngineOptions o = one_layer();
  o.position_offset = 131072 - 1000;  // + max_seq_len 1024 > the 1B's 131072
  EXPECT_THROW(Engine{o}, EngineError);
}

TEST(Engine, AFullQueueRefusesWithQueueFull) {
  Engine engine(one_layer(1, 1));
  std::vector<std::unique_ptr<Collector>> cs;
  int refused = 0;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 6; ++i) {
    cs.push_back(std::make_unique<Collector>());
    try {
      ids.push_back(engine.submit(text_request("Tell me a long story", 200), cs.back()->callbacks()));
    } catch (const EngineError& e) {
      EXPECT_EQ(e.kind(), EngineError::Kind::queue_full) << e.what();
      ++refused;
      cs.pop_back();
    }
  }
  EXPECT_EQ(refused, 4) << "one runs, one waits, the rest are refused";
  for (uint64_t id : ids) engine.cancel(id);
  for (auto& c : cs) c->wait();
}

TEST(Engine, DestroyingTheEngineCancelsWhatIsRunning) {
  Collector c;
  {
    Engine engine(one_layer());
    engine.submit(text_request("Go on forever", 1000), c.callbacks());
  }
  ASSERT_TRUE(c.done.has_value());
  EXPECT_EQ(c.done->reason, FinishReason::cancelled);
}

TEST(Engine, BadOptionsAreAnEngineError) {
  EngineOptions o = one_layer();
  o.max_batch = 33;
  EXPECT_THROW(Engine{o}, EngineError);
  o = one_layer();
  o.model.preset = "Llama-9-1T";
  EXPECT_THROW(Engine{o}, EngineError);
  o = one_layer();
  o.max_seq_len = 1 << 30;
  EXPECT_THROW(Engine{o}, EngineError);
}

}  // namespace
}  // namespace llama3

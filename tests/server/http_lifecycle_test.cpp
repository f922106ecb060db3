// The server's life with real load: a full queue (429), a request the engine fails (500) with
// the server going on, a client that leaves mid-stream, prefix-cache figures, concurrent
// clients, and a stop with streams in flight.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

#include "http_test_helpers.h"

namespace llama3::server::testing {
namespace {

using ::testing::HasSubstr;

// One running slot, no queue, and a pool of two 16-token blocks: a second request is refused
// with 429, and a request that outgrows the pool fails with 500 while the server goes on.
EngineOptions cramped_engine_options() {
  EngineOptions o = tiny_engine_options();
  o.max_batch = 1;
  o.max_queue = 0;
  o.block_size = 16;
  o.prefill_chunk = 16;
  o.kv_blocks = 2;
  return o;
}

TEST(ServerLifecycle, QueueFullIs429WithRetryAfter) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer s(cramped_engine_options());
  std::atomic<bool> first_started{false};
  auto first = std::async(std::launch::async, [&] {
    httplib::Client c = s.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = json{{"prompt", "Hi"}, {"max_tokens", 25}, {"ignore_eos", true}, {"stream", true}}.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      first_started = true;
      return true;
    };
    const httplib::Result r = c.send(req);
    return r ? r->status : -1;
  });
  while (!first_started) std::this_thread::sleep_for(5ms);
  const HttpResult second = post(s, "/v1/completions", json{{"prompt", "Hello"}, {"max_tokens", 2}});
  expect_error(second, 429, "requests", nullptr, "rate_limit_exceeded");
  const auto retry = second.headers.find("Retry-After");
  ASSERT_NE(retry, second.headers.end());
  EXPECT_EQ(retry->second, "1");
  EXPECT_EQ(first.get(), 200);
  EXPECT_THAT(get(s, "/metrics").body,
              HasSubstr("llama3_http_requests_total{endpoint=\"/v1/completions\",status=\"429\"} 1\n"));
}

TEST(ServerLifecycle, EngineFailureIs500AndTheServerGoesOn) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer s(cramped_engine_options());
  // 2 prompt tokens + 100 generated need 7 blocks of 16; the pool has 2.
  const json body = {{"prompt", {128000, 9906}}, {"max_tokens", 100}, {"ignore_eos", true}};
  expect_error(post(s, "/v1/completions", body), 500, "server_error");
  const SseStream sse = parse_sse(post(s, "/v1/completions", with(body, {{"stream", true}})).body);
  ASSERT_FALSE(sse.events.empty());
  EXPECT_TRUE(sse.events.back().contains("error")) << sse.events.back();
  EXPECT_EQ(sse.events.back()["error"]["type"], "server_error");
  EXPECT_TRUE(sse.done);
  EXPECT_EQ(get(s, "/health").status, 200);
  EXPECT_EQ(post(s, "/v1/completions", json{{"prompt", {128000, 9906}}, {"max_tokens", 3}}).status, 200);
}

TEST(ServerLifecycle, ClientLeavingMidStreamCancelsItsRequest) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  ASSERT_TRUE(engine_idle_within(s.engine(), 5s));
  const EngineMetrics before = s.engine().metrics();
  httplib::Client c = s.client();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = with(kChat, {{"max_tokens", 200}, {"ignore_eos", true}, {"stream", true}}).dump();
  req.set_header("Content-Type", "application/json");
  int chunks = 0;
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };
  const httplib::Result r = c.send(req);
  EXPECT_EQ(r.error(), httplib::Error::Canceled);
  c.stop();  // close the socket now, as a client that goes away does

  const auto left = std::chrono::steady_clock::now();
  EXPECT_TRUE(engine_idle_within(s.engine(), 3s)) << "the request still runs";
  const EngineMetrics after = s.engine().metrics();
  EXPECT_EQ(after.requests_cancelled, before.requests_cancelled + 1);
  EXPECT_LT(after.generated_tokens - before.generated_tokens, 100) << "it ran on after the client left";
  EXPECT_LT(std::chrono::steady_clock::now() - left, 1s);
  const std::string metrics = get(s, "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("\nllama3_requests_running 0\n"));
  EXPECT_THAT(metrics, HasSubstr("\nllama3_kv_blocks_used 0\n"));
}

TEST(ServerLifecycle, PrefixCacheHitsShowInUsageAndMetrics) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  // A prompt no other test sends, so that its first request finds nothing cached.
  std::vector<int32_t> prompt = {128000};
  for (int i = 0; i < 100; ++i) prompt.push_back(50000 + i);
  const json body = {{"prompt", prompt}, {"max_tokens", 1}};
  const std::string before = get(s, "/metrics").body;
  const json first = post(s, "/v1/completions", body).json_body();
  const json second = post(s, "/v1/completions", body).json_body();
  EXPECT_EQ(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  const int64_t cached = second["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_GE(cached, 64) << second;
  const std::string after = get(s, "/metrics").body;
  const std::string ok = "llama3_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"}";
  EXPECT_EQ(metric(after, ok) - std::max(0.0, metric(before, ok)), 2);
  EXPECT_EQ(metric(after, "llama3_prompt_tokens_total") - metric(before, "llama3_prompt_tokens_total"), 202);
  EXPECT_EQ(metric(after, "llama3_prompt_tokens_cached_total") - metric(before, "llama3_prompt_tokens_cached_total"),
            static_cast<double>(cached));
  EXPECT_DOUBLE_EQ(metric(after, "llama3_prefix_cache_hit_rate"),
                   metric(after, "llama3_prompt_tokens_cached_total") / metric(after, "llama3_prompt_tokens_total"));
  EXPECT_GT(metric(after, "llama3_prefix_cache_hit_rate"), 0.0);
  EXPECT_EQ(metric(after, "llama3_time_to_first_token_seconds_count") -
                metric(before, "llama3_time_to_first_token_seconds_count"),
            2);
  EXPECT_GE(metric(after, "llama3_kv_blocks_cached"), 3);
}

TEST(ServerLifecycle, ConcurrentClientsGetTheirOwnText) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  std::vector<json> bodies;
  for (int i = 0; i < 4; ++i) {
    bodies.push_back(with(kSampling, {{"prompt", "Item " + std::to_string(i)}, {"max_tokens", 6}, {"seed", 10 + i}}));
  }
  std::vector<std::string> alone;
  for (const json& b : bodies) alone.push_back(post(s, "/v1/completions", b).json_body()["choices"][0]["text"]);
  std::vector<std::future<std::string>> together;
  for (size_t i = 0; i < bodies.size(); ++i) {
    together.push_back(std::async(std::launch::async, [&, i] {
      // Half of them streamed.
      if (i % 2 == 0) return post(s, "/v1/completions", bodies[i]).json_body()["choices"][0]["text"].get<std::string>();
      return parse_sse(post(s, "/v1/completions", with(bodies[i], {{"stream", true}})).body).text();
    }));
  }
  for (size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ(together[i].get(), alone[i]) << "client " << i;
}

TEST(ServerLifecycle, StopEndsStreamsInFlight) {
  SKIP_WITHOUT_TOKENIZER();
  Engine& engine = shared_server().engine();
  ASSERT_TRUE(engine_idle_within(engine, 5s));
  auto server = std::make_unique<TestServer>(engine, ServerOptions{});
  std::atomic<bool> streaming{false};
  auto client = std::async(std::launch::async, [&] {
    httplib::Client c = server->client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = json{{"prompt", "Hi"}, {"max_tokens", 200}, {"ignore_eos", true}, {"stream", true}}.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      streaming = true;
      return true;
    };
    return c.send(req).error();
  });
  while (!streaming) std::this_thread::sleep_for(5ms);
  const auto t0 = std::chrono::steady_clock::now();
  server.reset();  // stop() and join the serving thread
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  client.get();
  EXPECT_TRUE(engine_idle_within(engine, 2s));
}

}  // namespace
}  // namespace llama3::server::testing

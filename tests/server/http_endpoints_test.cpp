// The endpoints over raw HTTP against a real engine (one layer of the 1B preset, random
// weights): both endpoints streamed and not, usage, stop strings and ids, log-probabilities,
// every request error in OpenAI's shape, auth, and that the server's text is the engine's text
// for the same seed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

#include "http_test_helpers.h"

namespace llama3::server::testing {
namespace {

using ::testing::HasSubstr;

TEST(ServerHttp, HealthModelsMetricsAndUnknownRoutes) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  const std::string name = s.engine().model_info().name;

  const HttpResult health = get(s, "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.json_body(), json({{"status", "ok"}}));

  const HttpResult models = get(s, "/v1/models");
  ASSERT_EQ(models.status, 200);
  const json m = models.json_body();
  EXPECT_EQ(m["object"], "list");
  ASSERT_EQ(m["data"].size(), 1u);
  EXPECT_EQ(m["data"][0]["id"], name);
  EXPECT_EQ(m["data"][0]["object"], "model");
  EXPECT_EQ(m["data"][0]["owned_by"], "llama3");
  EXPECT_EQ(get(s, "/v1/models/" + name).json_body()["id"], name);
  expect_error(get(s, "/v1/models/gpt-4o"), 404, "invalid_request_error", "model", "model_not_found");

  expect_error(get(s, "/v2/nothing"), 404, "invalid_request_error", nullptr, "unknown_url");
  const HttpResult metrics = get(s, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.headers.find("Content-Type")->second, HasSubstr("text/plain"));
  EXPECT_THAT(metrics.body, HasSubstr("llama3_requests_running "));
  EXPECT_GE(metric(metrics.body, "llama3_http_requests_total{endpoint=\"/health\",status=\"200\"}"), 1);
  EXPECT_GE(metric(metrics.body, "llama3_http_requests_total{endpoint=\"other\",status=\"404\"}"), 1);
  EXPECT_GE(metric(metrics.body, "llama3_http_requests_total{endpoint=\"/v1/models\",status=\"404\"}"), 1);
}

TEST(ServerHttp, ChatCompletionTextUsageAndFinish) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  const HttpResult r = post(s, "/v1/chat/completions", with(with(kChat, kSampling), {{"max_tokens", 6}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json_body();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], s.engine().model_info().name);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");

  GenerationRequest g = direct_request(6);
  g.messages = {{"system", "You are terse."}, {"user", "Say hi."}};
  const auto prompt = static_cast<int64_t>(s.engine().encode_prompt(g).size());
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt);
  EXPECT_EQ(j["usage"]["completion_tokens"], 6);
  EXPECT_EQ(j["usage"]["total_tokens"], prompt + 6);
  // The same seed and parameters through the engine directly give the same text.
  const Direct direct = generate_direct(s.engine(), g);
  EXPECT_EQ(j["choices"][0]["message"]["content"], direct.text);
  EXPECT_FALSE(direct.text.empty());
}

TEST(ServerHttp, CompletionFromTextAndTokenIdsMatchesTheEngine) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  const HttpResult r = post(s, "/v1/completions", with(kSampling, {{"prompt", "Once upon a time"}, {"max_tokens", 7}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json_body();
  EXPECT_EQ(j["object"], "text_completion");
  GenerationRequest g = direct_request(7);
  g.prompt_text = "Once upon a time";
  EXPECT_EQ(j["usage"]["prompt_tokens"], static_cast<int64_t>(s.engine().encode_prompt(g).size()));
  EXPECT_EQ(j["usage"]["completion_tokens"], 7);
  EXPECT_EQ(j["choices"][0]["text"], generate_direct(s.engine(), g).text);

  const std::vector<int32_t> ids = {128000, 12805, 5304, 264, 892};
  const HttpResult t = post(s, "/v1/completions", with(kSampling, {{"prompt", ids}, {"max_tokens", 3}}));
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.json_body()["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(t.json_body()["usage"]["completion_tokens"], 3);
  // Without max_tokens a completion stops at OpenAI's default of 16.
  const HttpResult d = post(s, "/v1/completions", with(kSampling, {{"prompt", ids}}));
  EXPECT_EQ(d.json_body()["usage"]["completion_tokens"], 16);
}

TEST(ServerHttp, StreamedChatEqualsNonStreamed) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  const json body = with(with(kChat, kSampling), {{"max_completion_tokens", 8}});
  const HttpResult whole = post(s, "/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const HttpResult streamed = post(s, "/v1/chat/completions", with(body, {{"stream", true}}));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_THAT(streamed.headers.find("Content-Type")->second, HasSubstr("text/event-stream"));
  const SseStream sse = parse_sse(streamed.body);
  EXPECT_TRUE(sse.done);
  ASSERT_GE(sse.events.size(), 3u);
  EXPECT_EQ(sse.events.front()["choices"][0]["delta"]["role"], "assistant");
  for (const json& e : sse.events) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["id"], sse.events.front()["id"]);
    EXPECT_FALSE(e.contains("usage"));  // not asked for
  }
  EXPECT_EQ(sse.events.back()["choices"][0]["finish_reason"], "length");
  for (size_t i = 0; i + 1 < sse.events.size(); ++i) EXPECT_TRUE(sse.events[i]["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(sse.text(), whole.json_body()["choices"][0]["message"]["content"]);
}

TEST(ServerHttp, StreamedCompletionWithUsage) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  const json body = with(kSampling, {{"prompt", "The sky is"}, {"max_tokens", 5}});
  const HttpResult whole = post(s, "/v1/completions", body);
  const HttpResult streamed =
      post(s, "/v1/completions", with(body, {{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  const SseStream sse = parse_sse(streamed.body);
  EXPECT_TRUE(sse.done);
  ASSERT_GE(sse.events.size(), 2u);
  for (size_t i = 0; i + 1 < sse.events.size(); ++i) {
    EXPECT_EQ(sse.events[i]["object"], "text_completion");
    EXPECT_TRUE(sse.events[i]["usage"].is_null()) << sse.events[i];
  }
  const json& last = sse.events.back();
  EXPECT_EQ(last["choices"], json::array());
  EXPECT_EQ(last["usage"], whole.json_body()["usage"]);
  EXPECT_EQ(last["usage"]["completion_tokens"], 5);
  EXPECT_EQ(sse.events[sse.events.size() - 2]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(sse.text(), whole.json_body()["choices"][0]["text"]);
}

// A stop string taken from the middle of a known completion: the text ends before it, the
// finish reason is "stop", and streaming never shows any of it.
TEST(ServerHttp, StopStringsCutTheTextStreamedOrNot) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  const json body = with(kSampling, {{"prompt", "A list of fruits:"}, {"max_tokens", 24}});
  const std::string full = post(s, "/v1/completions", body).json_body()["choices"][0]["text"];
  // Four ASCII bytes past the first third whose first occurrence is there.
  std::string stop;
  for (size_t k = full.size() / 3; k + 4 <= full.size() && stop.empty(); ++k) {
    const std::string candidate = full.substr(k, 4);
    const bool ascii = std::all_of(candidate.begin(), candidate.end(), [](char c) { return c > 32 && c < 127; });
    if (ascii && full.find(candidate) == k) stop = candidate;
  }
  ASSERT_FALSE(stop.empty()) << "no usable stop string in: " << full;
  const std::string expected = full.substr(0, full.find(stop));

  // With room for 200 tokens: the stop string, not the limit, ends it, and the engine request
  // is cancelled at once rather than run to the end.
  ASSERT_TRUE(engine_idle_within(s.engine(), 5s));
  const EngineMetrics before = s.engine().metrics();
  const json stopped =
      post(s, "/v1/completions", with(body, {{"stop", {"never-in-there", stop}}, {"max_tokens", 200}})).json_body();
  EXPECT_EQ(stopped["choices"][0]["text"], expected);
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
  EXPECT_LT(stopped["usage"]["completion_tokens"], 24);
  EXPECT_GT(stopped["usage"]["completion_tokens"], 0);
  EXPECT_TRUE(engine_idle_within(s.engine(), 1s)) << "the stopped request still runs";
  const EngineMetrics after = s.engine().metrics();
  EXPECT_EQ(after.requests_cancelled - before.requests_cancelled, 1);
  EXPECT_LT(after.generated_tokens - before.generated_tokens, 40);

  const SseStream sse = parse_sse(
      post(s, "/v1/completions",
           with(body, {{"stop", stop}, {"max_tokens", 200}, {"stream", true}, {"stream_options", {{"include_usage", true}}}}))
          .body);
  EXPECT_TRUE(sse.done);
  EXPECT_EQ(sse.text(), expected);
  EXPECT_EQ(sse.events[sse.events.size() - 2]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(sse.events.back()["usage"]["completion_tokens"], stopped["usage"]["completion_tokens"]);

  // Chat too.
  const json chat_body = with(with(kChat, kSampling), {{"max_tokens", 24}});
  const std::string chat_full = post(s, "/v1/chat/completions", chat_body).json_body()["choices"][0]["message"]["content"];
  const std::string chat_stop = chat_full.substr(chat_full.size() / 2, 1);
  const json chat_stopped = post(s, "/v1/chat/completions", with(chat_body, {{"stop", chat_stop}})).json_body();
  EXPECT_EQ(chat_stopped["choices"][0]["message"]["content"], chat_full.substr(0, chat_full.find(chat_stop)));
  EXPECT_EQ(chat_stopped["choices"][0]["finish_reason"], "stop");
}

TEST(ServerHttp, StopTokenIdsEndAtThatToken) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  GenerationRequest g = direct_request(10);
  g.prompt_text = "Numbers:";
  const Direct direct = generate_direct(s.engine(), g);
  ASSERT_EQ(direct.tokens.size(), 10u);
  // The first token that did not occur before it, past the first.
  size_t at = 1;
  while (at < direct.tokens.size() &&
         std::find(direct.tokens.begin(), direct.tokens.begin() + static_cast<std::ptrdiff_t>(at), direct.tokens[at]) !=
             direct.tokens.begin() + static_cast<std::ptrdiff_t>(at)) {
    ++at;
  }
  ASSERT_LT(at, direct.tokens.size());
  const json j = post(s, "/v1/completions",
                      with(kSampling, {{"prompt", "Numbers:"}, {"max_tokens", 10}, {"stop_token_ids", {direct.tokens[at]}}}))
                     .json_body();
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["completion_tokens"], static_cast<int64_t>(at) + 1);  // the stop token counts
  const std::vector<int32_t> before(direct.tokens.begin(), direct.tokens.begin() + static_cast<std::ptrdiff_t>(at));
  EXPECT_EQ(j["choices"][0]["text"], s.engine().decode(before));
}

TEST(ServerHttp, Logprobs) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  const json chat = post(s, "/v1/chat/completions",
                         with(with(kChat, kSampling), {{"max_tokens", 4}, {"logprobs", true}, {"top_logprobs", 3}}))
                        .json_body();
  const json& content = chat["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u) << chat;
  std::string spelled;
  for (const json& t : content) {
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_GE(t["top_logprobs"][0]["logprob"].get<double>(), t["top_logprobs"][2]["logprob"].get<double>());
    EXPECT_FALSE(t["bytes"].empty());
    spelled += t["token"].get<std::string>();
  }
  EXPECT_EQ(spelled, chat["choices"][0]["message"]["content"]);

  const json text = post(s, "/v1/completions", with(kSampling, {{"prompt", "Hi"}, {"max_tokens", 3}, {"logprobs", 2}}))
                        .json_body();
  const json& lp = text["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 3u) << text;
  EXPECT_EQ(lp["token_logprobs"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(lp["text_offset"][0], 0);
  // Without logprobs: null.
  EXPECT_TRUE(post(s, "/v1/completions", with(kSampling, {{"prompt", "Hi"}, {"max_tokens", 1}}))
                  .json_body()["choices"][0]["logprobs"]
                  .is_null());
}

TEST(ServerHttp, ErrorsAreOpenAiShaped) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer& s = shared_server();
  expect_error(post(s, "/v1/chat/completions", std::string("{\"messages\": [")), 400, "invalid_request_error", nullptr,
               "invalid_json");
  expect_error(post(s, "/v1/completions", std::string("[]")), 400, "invalid_request_error");
  expect_error(post(s, "/v1/chat/completions", with(kChat, {{"max_tokens", "ten"}})), 400, "invalid_request_error",
               "max_tokens");
  expect_error(post(s, "/v1/chat/completions", with(kChat, {{"max_tokens", 0}})), 400, "invalid_request_error",
               "max_tokens");
  expect_error(post(s, "/v1/completions", json{{"prompt", "x"}, {"max_tokens", -1}}), 400, "invalid_request_error",
               "max_tokens");
  expect_error(post(s, "/v1/chat/completions", with(kChat, {{"n", 2}})), 400, "invalid_request_error", "n");
  expect_error(post(s, "/v1/chat/completions", with(kChat, {{"temperature", 9}})), 400, "invalid_request_error",
               "temperature");
  expect_error(post(s, "/v1/chat/completions", json{{"messages", "hello"}}), 400, "invalid_request_error", "messages");
  expect_error(post(s, "/v1/completions", json{{"max_tokens", 2}}), 400, "invalid_request_error", "prompt");
  // Unknown model: 404 as OpenAI answers it; the served id (or none) is fine.
  expect_error(post(s, "/v1/chat/completions", with(kChat, {{"model", "gpt-4o"}})), 404, "invalid_request_error",
               "model", "model_not_found");
  EXPECT_EQ(post(s, "/v1/chat/completions", with(kChat, {{"model", s.engine().model_info().name}, {"max_tokens", 1}}))
                .status,
            200);
  // Unknown fields are ignored.
  EXPECT_EQ(post(s, "/v1/chat/completions", with(kChat, {{"max_tokens", 1}, {"frobnicate", {1, 2}}, {"user", "u"}}))
                .status,
            200);
  // A prompt longer than the context, or one leaving too little room.
  expect_error(post(s, "/v1/completions", json{{"prompt", std::vector<int32_t>(300, 1000)}, {"max_tokens", 1}}), 400,
               "invalid_request_error", "prompt", "context_length_exceeded");
  expect_error(post(s, "/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 256}}), 400, "invalid_request_error",
               "max_tokens", "context_length_exceeded");
  // What the engine refuses (a token outside the vocabulary) is a 400 too.
  expect_error(post(s, "/v1/completions", json{{"prompt", {128000, 999999}}, {"max_tokens", 1}}), 400,
               "invalid_request_error");
  EXPECT_EQ(get(s, "/health").status, 200);
}

TEST(ServerHttp, ApiKeyGuardsTheApiOnly) {
  SKIP_WITHOUT_TOKENIZER();
  TestServer guarded(shared_server().engine(), ServerOptions{.api_key = "sekret-key"});
  const json body = with(kChat, {{"max_tokens", 1}});
  expect_error(post(guarded, "/v1/chat/completions", body), 401, "invalid_request_error", nullptr, "invalid_api_key");
  expect_error(post(guarded, "/v1/chat/completions", body, {{"Authorization", "Bearer wrong"}}), 401,
               "invalid_request_error", nullptr, "invalid_api_key");
  expect_error(post(guarded, "/v1/chat/completions", body, {{"Authorization", "sekret-key"}}), 401,
               "invalid_request_error", nullptr, "invalid_api_key");
  expect_error(get(guarded, "/v1/models"), 401, "invalid_request_error", nullptr, "invalid_api_key");
  EXPECT_EQ(post(guarded, "/v1/chat/completions", body, {{"Authorization", "Bearer sekret-key"}}).status, 200);
  EXPECT_EQ(get(guarded, "/v1/models", {{"Authorization", "Bearer sekret-key"}}).status, 200);
  EXPECT_EQ(get(guarded, "/health").status, 200);
  EXPECT_EQ(get(guarded, "/metrics").status, 200);
}

}  // namespace
}  // namespace llama3::server::testing

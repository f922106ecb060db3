// Request bodies of /v1/chat/completions and /v1/completions: what reaches the engine, and
// every type or range error as a 400 naming its parameter.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/openai_request.h"

namespace llama3::server {
namespace {

using nlohmann::json;

OpenAiRequest chat(const json& extra) {
  json body = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  if (!extra.is_null()) body.update(extra);
  return parse_request(Endpoint::chat_completions, body.dump());
}

OpenAiRequest completion(const json& extra) {
  json body = {{"prompt", "Hello"}};
  if (!extra.is_null()) body.update(extra);
  return parse_request(Endpoint::completions, body.dump());
}

// The ApiError a body raises (fails the test when none is thrown).
ApiError error_of(Endpoint endpoint, const std::string& body) {
  try {
    parse_request(endpoint, body);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(0, "", "");
}

ApiError chat_error(const json& extra) {
  json body = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  if (!extra.is_null()) body.update(extra);
  return error_of(Endpoint::chat_completions, body.dump());
}

ApiError completion_error(const json& extra) {
  json body = {{"prompt", "Hello"}};
  if (!extra.is_null()) body.update(extra);
  return error_of(Endpoint::completions, body.dump());
}

TEST(OpenAiRequest, ChatFieldsReachTheEngineRequest) {
  const OpenAiRequest r = chat({{"model", "m"},
                                {"messages",
                                 {{{"role", "developer"}, {"content", "Be brief."}},
                                  {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}},
                                  {{"role", "assistant"}, {"content", nullptr}}}},
                                {"temperature", 0.5},
                                {"top_p", 0.8},
                                {"top_k", 7},
                                {"seed", 99},
                                {"max_completion_tokens", 12},
                                {"max_tokens", 50},
                                {"stop", "END"},
                                {"stop_token_ids", {5, 6}},
                                {"ignore_eos", true},
                                {"logprobs", true},
                                {"top_logprobs", 3},
                                {"stream", true},
                                {"stream_options", {{"include_usage", true}}},
                                {"unknown_field", {{"anything", 1}}}});
  EXPECT_EQ(r.endpoint, Endpoint::chat_completions);
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.generation.messages.size(), 3u);
  EXPECT_EQ(r.generation.messages[0].role, "system");  // developer is the system role
  EXPECT_EQ(r.generation.messages[1].content, "ab");
  EXPECT_EQ(r.generation.messages[2].content, "");
  EXPECT_FLOAT_EQ(r.generation.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.generation.sampling.top_p, 0.8f);
  EXPECT_EQ(r.generation.sampling.top_k, 7);
  EXPECT_EQ(r.generation.sampling.seed, 99u);
  EXPECT_EQ(r.max_tokens, 12);  // max_completion_tokens wins over max_tokens
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.generation.stop_tokens, (std::vector<int32_t>{5, 6}));
  EXPECT_TRUE(r.generation.ignore_eos);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.generation.top_logprobs, 3);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
}

TEST(OpenAiRequest, DefaultsAreOpenAis) {
  const OpenAiRequest r = chat({});
  EXPECT_FALSE(r.model);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FLOAT_EQ(r.generation.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.generation.sampling.top_p, 1.0f);
  EXPECT_EQ(r.generation.sampling.top_k, 0);
  EXPECT_EQ(r.generation.top_logprobs, -1);
  EXPECT_FALSE(r.logprobs);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_TRUE(r.stop.empty());
  // Unseeded requests get different seeds; nulls count as absent.
  EXPECT_NE(chat({}).generation.sampling.seed, chat({}).generation.sampling.seed);
  const OpenAiRequest nulls = chat({{"temperature", nullptr}, {"stop", nullptr}, {"model", nullptr}, {"n", nullptr}});
  EXPECT_FLOAT_EQ(nulls.generation.sampling.temperature, 1.0f);
  EXPECT_FALSE(nulls.model);
}

TEST(OpenAiRequest, CompletionPromptForms) {
  EXPECT_EQ(completion({{"prompt", "abc"}}).generation.prompt_text, "abc");
  EXPECT_EQ(completion({{"prompt", {128000, 9906}}}).generation.prompt_tokens, (std::vector<int32_t>{128000, 9906}));
  EXPECT_EQ(completion({{"prompt", {"one"}}}).generation.prompt_text, "one");
  EXPECT_EQ(completion({{"prompt", {{1, 2}}}}).generation.prompt_tokens, (std::vector<int32_t>{1, 2}));
  EXPECT_TRUE(completion({}).generation.messages.empty());
  // Completions' logprobs is a count.
  const OpenAiRequest lp = completion({{"logprobs", 2}});
  EXPECT_TRUE(lp.logprobs);
  EXPECT_EQ(lp.generation.top_logprobs, 2);
  EXPECT_EQ(completion({{"logprobs", 0}}).generation.top_logprobs, 0);
  // A seed may be negative (OpenAI's is a signed 64-bit integer) and an integer may be written 3.0.
  EXPECT_EQ(completion({{"seed", -1}}).generation.sampling.seed, ~uint64_t{0});
  EXPECT_EQ(completion({{"max_tokens", 3.0}}).max_tokens, 3);
  EXPECT_EQ(completion({{"top_k", -1}}).generation.sampling.top_k, 0);
  EXPECT_EQ(completion({{"stop", {"a", "b"}}}).stop, (std::vector<std::string>{"a", "b"}));
}

TEST(OpenAiRequest, MalformedBodies) {
  for (const char* body : {"", "{", "not json", "{\"messages\": [}"}) {
    const ApiError e = error_of(Endpoint::chat_completions, body);
    EXPECT_EQ(e.status(), 400) << body;
    EXPECT_EQ(e.type(), "invalid_request_error");
    EXPECT_EQ(e.code(), "invalid_json");
  }
  EXPECT_EQ(error_of(Endpoint::completions, "[1, 2]").status(), 400);
  // Found by fuzz_server_request: a number too large for a double is the parser's out_of_range,
  // not a parse_error; it escaped as a plain exception (a 500) instead of this 400.
  const ApiError overflow = error_of(Endpoint::completions, "{\"prompt\": [1281e3080000]}");
  EXPECT_EQ(overflow.status(), 400);
  EXPECT_EQ(overflow.code(), "invalid_json");
  EXPECT_EQ(error_of(Endpoint::completions, "\"text\"").status(), 400);
}

// Each wrong field names itself in `param`.
TEST(OpenAiRequest, WrongTypesAndRangesAre400WithTheirParam) {
  const std::pair<json, std::string> chat_cases[] = {
      {{{"messages", "hi"}}, "messages"},
      {{{"messages", json::array()}}, "messages"},
      {{{"messages", {{{"content", "x"}}}}}, "messages[0].role"},
      {{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}, "messages[0].role"},
      {{{"messages", {{{"role", "user"}, {"content", 5}}}}}, "messages[0].content"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}, "messages[0].content"},
      {{{"model", 5}}, "model"},
      {{{"max_tokens", "5"}}, "max_tokens"},
      {{{"max_tokens", 0}}, "max_tokens"},
      {{{"max_tokens", -3}}, "max_tokens"},
      {{{"max_completion_tokens", 0}}, "max_completion_tokens"},
      {{{"max_tokens", 2.5}}, "max_tokens"},
      {{{"temperature", "hot"}}, "temperature"},
      {{{"temperature", 2.5}}, "temperature"},
      {{{"temperature", -0.1}}, "temperature"},
      {{{"top_p", 0}}, "top_p"},
      {{{"top_p", 1.5}}, "top_p"},
      {{{"top_k", -2}}, "top_k"},
      {{{"seed", "x"}}, "seed"},
      {{{"n", 2}}, "n"},
      {{{"n", "1"}}, "n"},
      {{{"stop", 5}}, "stop"},
      {{{"stop", {"a", 1}}}, "stop"},
      {{{"stop", ""}}, "stop"},
      {{{"stop_token_ids", {1, "x"}}}, "stop_token_ids"},
      {{{"stop_token_ids", {-1}}}, "stop_token_ids"},
      {{{"stop_token_ids", 3}}, "stop_token_ids"},
      {{{"logprobs", 1}}, "logprobs"},
      {{{"top_logprobs", 2}}, "top_logprobs"},  // without logprobs: true
      {{{"logprobs", true}, {"top_logprobs", 21}}, "top_logprobs"},
      {{{"stream", "yes"}}, "stream"},
      {{{"stream_options", {{"include_usage", true}}}}, "stream_options"},  // without stream
      {{{"stream", true}, {"stream_options", 1}}, "stream_options"},
      {{{"stream", true}, {"stream_options", {{"include_usage", "yes"}}}}, "stream_options.include_usage"},
      {{{"ignore_eos", 1}}, "ignore_eos"},
  };
  for (const auto& [extra, param] : chat_cases) {
    const ApiError e = chat_error(extra);
    EXPECT_EQ(e.status(), 400) << extra.dump();
    EXPECT_EQ(e.type(), "invalid_request_error") << extra.dump();
    EXPECT_EQ(e.param(), param) << extra.dump() << ": " << e.what();
  }
  const std::pair<json, std::string> completion_cases[] = {
      {{{"prompt", nullptr}}, "prompt"},
      {{{"prompt", 5}}, "prompt"},
      {{{"prompt", json::array()}}, "prompt"},
      {{{"prompt", {"a", "b"}}}, "prompt"},
      {{{"prompt", {1, "a"}}}, "prompt"},
      {{{"prompt", {-5}}}, "prompt"},
      {{{"logprobs", 6}}, "logprobs"},
      {{{"logprobs", true}}, "logprobs"},
      {{{"echo", true}}, "echo"},
      {{{"best_of", 2}}, "best_of"},
  };
  for (const auto& [extra, param] : completion_cases) {
    const ApiError e = completion_error(extra);
    EXPECT_EQ(e.status(), 400) << extra.dump();
    EXPECT_EQ(e.param(), param) << extra.dump() << ": " << e.what();
  }
}

TEST(OpenAiRequest, ErrorJsonHasOpenAisShape) {
  const ApiError e = chat_error({{"n", 3}});
  const json j = e.to_json();
  ASSERT_TRUE(j.contains("error"));
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "n");
  EXPECT_TRUE(j["error"]["code"].is_null());
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
}

TEST(OpenAiRequest, FitToContext) {
  OpenAiRequest c = chat({});
  fit_to_context(c, 10, 100);
  EXPECT_EQ(c.generation.max_tokens, 90);  // chat without a limit: what the context has left

  OpenAiRequest p = completion({});
  fit_to_context(p, 10, 100);
  EXPECT_EQ(p.generation.max_tokens, 16);  // OpenAI's default for completions

  OpenAiRequest given = completion({{"max_tokens", 90}});
  fit_to_context(given, 10, 100);
  EXPECT_EQ(given.generation.max_tokens, 90);

  OpenAiRequest too_many = completion({{"max_tokens", 91}});
  try {
    fit_to_context(too_many, 10, 100);
    ADD_FAILURE() << "prompt 10 + max_tokens 91 fit a context of 100";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "context_length_exceeded");
    EXPECT_EQ(e.param(), "max_tokens");
  }
  OpenAiRequest long_prompt = chat({});
  try {
    fit_to_context(long_prompt, 100, 100);
    ADD_FAILURE() << "a prompt as long as the context was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.code(), "context_length_exceeded");
    EXPECT_EQ(e.param(), "messages");
  }
}

}  // namespace
}  // namespace llama3::server

// The response objects in OpenAI's shapes, as the SDKs read them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/openai_response.h"

namespace llama3::server {
namespace {

using nlohmann::json;

TEST(OpenAiResponse, HeaderIdsAndTime) {
  const ResponseHeader chat = make_header(Endpoint::chat_completions, "M");
  const ResponseHeader text = make_header(Endpoint::completions, "M");
  EXPECT_TRUE(chat.id.starts_with("chatcmpl-")) << chat.id;
  EXPECT_TRUE(text.id.starts_with("cmpl-")) << text.id;
  EXPECT_NE(make_header(Endpoint::completions, "M").id, text.id);
  EXPECT_GT(chat.created, 1700000000);
  EXPECT_EQ(chat.model, "M");
}

TEST(OpenAiResponse, Usage) {
  const json u = usage_json({7, 5, 3});
  EXPECT_EQ(u["prompt_tokens"], 7);
  EXPECT_EQ(u["completion_tokens"], 5);
  EXPECT_EQ(u["total_tokens"], 12);
  EXPECT_EQ(u["prompt_tokens_details"]["cached_tokens"], 3);
}

TEST(OpenAiResponse, ChatCompletion) {
  const ResponseHeader h = make_header(Endpoint::chat_completions, "M");
  const json j = completion_json(h, "Hello", "length", nullptr, {3, 2, 0});
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"], h.id);
  EXPECT_EQ(j["model"], "M");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["usage"]["total_tokens"], 5);
}

TEST(OpenAiResponse, TextCompletion) {
  const ResponseHeader h = make_header(Endpoint::completions, "M");
  const json j = completion_json(h, "abc", "stop", nullptr, {1, 1, 0});
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "abc");
  EXPECT_FALSE(j["choices"][0].contains("message"));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

std::vector<LogprobEntry> entries() {
  return {{"Hi", -0.25f, {{"Hi", -0.25f}, {"Yo", -2.0f}}, 0}, {"\xC3", -1.0f, {}, 2}};
}

TEST(OpenAiResponse, ChatLogprobs) {
  const json j = logprobs_json(Endpoint::chat_completions, entries());
  ASSERT_EQ(j["content"].size(), 2u);
  EXPECT_EQ(j["content"][0]["token"], "Hi");
  EXPECT_DOUBLE_EQ(j["content"][0]["logprob"].get<double>(), -0.25);
  EXPECT_EQ(j["content"][0]["bytes"], json({72, 105}));
  ASSERT_EQ(j["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(j["content"][0]["top_logprobs"][1]["token"], "Yo");
  EXPECT_EQ(j["content"][1]["bytes"], json({0xC3}));  // a token that is part of a character
  // Half a character is not UTF-8: the text form replaces it rather than throwing.
  EXPECT_NO_THROW(json_text(j));
}

TEST(OpenAiResponse, CompletionLogprobs) {
  const json j = logprobs_json(Endpoint::completions, entries());
  EXPECT_EQ(j["tokens"], json({"Hi", "\xC3"}));
  EXPECT_EQ(j["token_logprobs"], json({-0.25, -1.0}));
  EXPECT_EQ(j["top_logprobs"][0], json({{"Hi", -0.25}, {"Yo", -2.0}}));
  EXPECT_EQ(j["text_offset"], json({0, 2}));
}

TEST(OpenAiResponse, ChatChunks) {
  const ResponseHeader h = make_header(Endpoint::chat_completions, "M");
  const json first = chunk_json(h, "", nullptr, std::nullopt, true, false);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));

  const json middle = chunk_json(h, "lo", nullptr, std::nullopt, false, true);
  EXPECT_EQ(middle["choices"][0]["delta"], json({{"content", "lo"}}));
  EXPECT_TRUE(middle.contains("usage"));
  EXPECT_TRUE(middle["usage"].is_null());

  const json last = chunk_json(h, "", nullptr, "stop", false, false);
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");

  const json usage = usage_chunk_json(h, {4, 2, 0});
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 6);
  EXPECT_EQ(usage["id"], h.id);
}

TEST(OpenAiResponse, CompletionChunks) {
  const ResponseHeader h = make_header(Endpoint::completions, "M");
  const json c = chunk_json(h, "ab", nullptr, std::nullopt, false, false);
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["choices"][0]["text"], "ab");
  EXPECT_FALSE(c["choices"][0].contains("delta"));
}

TEST(OpenAiResponse, SseFraming) {
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
}

}  // namespace
}  // namespace llama3::server

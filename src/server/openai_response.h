#pragma once
// The JSON objects the server answers with, in OpenAI's shapes: chat.completion and
// text_completion, their streamed chunks, usage, log-probabilities, and the SSE framing.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "server/openai_request.h"
#include "server/output_assembler.h"

namespace llama3::server {

// What every object of one response repeats.
struct ResponseHeader {
  Endpoint endpoint = Endpoint::chat_completions;
  std::string id;       // chatcmpl-... | cmpl-...
  int64_t created = 0;  // Unix seconds
  std::string model;
};

ResponseHeader make_header(Endpoint endpoint, std::string model);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_prompt_tokens = 0;
};

nlohmann::json usage_json(const Usage& usage);

// chat: {"content": [{token, logprob, bytes, top_logprobs}]}; completions: {tokens,
// token_logprobs, top_logprobs, text_offset} (offsets within the completion's text).
nlohmann::json logprobs_json(Endpoint endpoint, std::span<const LogprobEntry> entries);

// The whole answer of a non-streamed request. `logprobs` is null when none were asked for.
nlohmann::json completion_json(const ResponseHeader& h, std::string_view text, std::string_view finish_reason,
                               const nlohmann::json& logprobs, const Usage& usage);

// One streamed chunk. Chat: `role` goes in the first chunk's delta; a chunk with a finish
// reason has an empty delta. With include_usage every chunk carries "usage": null.
nlohmann::json chunk_json(const ResponseHeader& h, std::string_view text, const nlohmann::json& logprobs,
                          std::optional<std::string_view> finish_reason, bool with_role, bool include_usage);
// The last chunk when include_usage: no choices, the usage.
nlohmann::json usage_chunk_json(const ResponseHeader& h, const Usage& usage);

// j as compact text; bytes that are not UTF-8 are replaced, never thrown on.
std::string json_text(const nlohmann::json& j);
// "data: <json>\n\n"; and the stream's end.
std::string sse_event(const nlohmann::json& j);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace llama3::server

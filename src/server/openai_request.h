#pragma once
// The body of POST /v1/chat/completions and /v1/completions, read into an engine request plus
// the fields only the server acts on (streaming, stop strings, log-probability shape). Unknown
// fields are ignored, as OpenAI does; a known field of the wrong type or out of range is an
// ApiError (400) naming it.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/engine.h"

namespace llama3::server {

enum class Endpoint { chat_completions, completions };

struct OpenAiRequest {
  Endpoint endpoint = Endpoint::chat_completions;
  GenerationRequest generation;     // prompt, sampling, stop token ids, top_logprobs; max_tokens see below
  std::optional<std::string> model;
  std::optional<int64_t> max_tokens;  // max_completion_tokens, else max_tokens; unset: fit_to_context decides
  bool stream = false;
  bool include_usage = false;       // stream_options.include_usage
  std::vector<std::string> stop;    // stop strings: the text ends before the first one found
  bool logprobs = false;            // return log-probabilities (top N in generation.top_logprobs)
};

// Parses and validates a body; throws ApiError. A request without `seed` gets a fresh random
// one, so unseeded requests differ as they do at OpenAI.
OpenAiRequest parse_request(Endpoint endpoint, std::string_view body);

// Sets generation.max_tokens for a prompt of `prompt_tokens` tokens: as asked, else all the
// context has left (chat) or 16 (completions, OpenAI's default). Throws ApiError 400
// (context_length_exceeded) when the prompt and the completion do not fit in `max_seq_len`.
void fit_to_context(OpenAiRequest& request, int64_t prompt_tokens, int64_t max_seq_len);

}  // namespace llama3::server

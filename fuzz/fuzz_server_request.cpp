// The server's request bodies: /v1/chat/completions and /v1/completions JSON into a validated
// request (the first byte picks the endpoint). Properties: a rejected body is an ApiError with a
// status and a message (what the client gets); an accepted one is within the limits the engine
// checks again (sampling ranges, top_logprobs 0..20, a prompt given one way), and fitting it to a
// context either sets max_tokens within the context or is an ApiError.
#include "fuzz_support.h"
#include "runtime/sampler.h"
#include "server/api_error.h"
#include "server/openai_request.h"

using namespace llama3;

namespace {

template <typename Fn>
bool api_accepts(Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const server::ApiError& e) {
    fuzz::require(e.what()[0] != '\0' && e.status() >= 400 && e.status() < 600, "ApiError without message or status");
    return false;
  } catch (const std::exception& e) {
    fuzz::finding(std::string("not an ApiError: ") + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto endpoint = data[0] % 2 ? server::Endpoint::completions : server::Endpoint::chat_completions;
  server::OpenAiRequest r;
  if (!api_accepts([&] { r = server::parse_request(endpoint, body); })) return 0;
  const GenerationRequest& g = r.generation;
  const int ways = (g.prompt_tokens.empty() ? 0 : 1) + (g.prompt_text ? 1 : 0) + (g.messages.empty() ? 0 : 1);
  fuzz::require(ways == 1, "accepted a request without exactly one prompt");
  fuzz::require(g.top_logprobs >= -1 && g.top_logprobs <= 20, "top_logprobs out of range accepted");
  const runtime::SamplingParams sp{g.sampling.temperature, g.sampling.top_p, g.sampling.top_k, g.sampling.seed};
  fuzz::accepts([&] { runtime::validate_sampling_params(sp); });
  for (const int64_t prompt : {int64_t{1}, int64_t{100}, int64_t{8191}}) {
    server::OpenAiRequest fitted = r;
    if (api_accepts([&] { server::fit_to_context(fitted, prompt, 8192); })) {
      fuzz::require(fitted.generation.max_tokens >= 1 && prompt + fitted.generation.max_tokens <= 8192,
                    "fit_to_context left a request that does not fit");
    }
  }
  return 0;
}

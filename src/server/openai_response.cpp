#include "server/openai_response.h"

#include <chrono>
#include <cmath>
#include <random>

namespace llama3::server {
namespace {

using nlohmann::json;

std::string random_suffix() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s(24, ' ');
  for (char& c : s) c = kChars[random() % (sizeof(kChars) - 1)];
  return s;
}

// JSON has no -inf: a token the sampler could never pick gets OpenAI's floor value.
double finite_logprob(float v) { return std::isfinite(v) ? v : -9999.0; }

json utf8_bytes(const std::string& s) {
  json a = json::array();
  for (unsigned char c : s) a.push_back(static_cast<int>(c));
  return a;
}

bool is_chat(const ResponseHeader& h) { return h.endpoint == Endpoint::chat_completions; }

}  // namespace

ResponseHeader make_header(Endpoint endpoint, std::string model) {
  ResponseHeader h;
  h.endpoint = endpoint;
  h.id = (endpoint == Endpoint::chat_completions ? "chatcmpl-" : "cmpl-") + random_suffix();
  h.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  h.model = std::move(model);
  return h;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}}};
}

json logprobs_json(Endpoint endpoint, std::span<const LogprobEntry> entries) {
  if (endpoint == Endpoint::chat_completions) {
    json content = json::array();
    for (const LogprobEntry& e : entries) {
      json top = json::array();
      for (const auto& [token, logprob] : e.top) {
        top.push_back({{"token", token}, {"logprob", finite_logprob(logprob)}, {"bytes", utf8_bytes(token)}});
      }
      content.push_back({{"token", e.token},
                         {"logprob", finite_logprob(e.logprob)},
                         {"bytes", utf8_bytes(e.token)},
                         {"top_logprobs", std::move(top)}});
    }
    return {{"content", std::move(content)}, {"refusal", nullptr}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (const LogprobEntry& e : entries) {
    tokens.push_back(e.token);
    token_logprobs.push_back(finite_logprob(e.logprob));
    json top = json::object();
    for (const auto& [token, logprob] : e.top) top[token] = finite_logprob(logprob);
    top_logprobs.push_back(std::move(top));
    offsets.push_back(e.text_offset);
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top_logprobs)},
          {"text_offset", std::move(offsets)}};
}

json completion_json(const ResponseHeader& h, std::string_view text, std::string_view finish_reason,
                     const json& logprobs, const Usage& usage) {
  json choice = {{"index", 0}, {"logprobs", logprobs}, {"finish_reason", finish_reason}};
  if (is_chat(h)) {
    choice["message"] = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  } else {
    choice["text"] = text;
  }
  return {{"id", h.id},
          {"object", is_chat(h) ? "chat.completion" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"choices", json::array({std::move(choice)})},
          {"usage", usage_json(usage)}};
}

json chunk_json(const ResponseHeader& h, std::string_view text, const json& logprobs,
                std::optional<std::string_view> finish_reason, bool with_role, bool include_usage) {
  json choice = {{"index", 0},
                 {"logprobs", logprobs},
                 {"finish_reason", finish_reason ? json(*finish_reason) : json(nullptr)}};
  if (is_chat(h)) {
    json delta = json::object();
    if (with_role) delta["role"] = "assistant";
    if (!finish_reason || !text.empty()) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  json chunk = {{"id", h.id},
                {"object", is_chat(h) ? "chat.completion.chunk" : "text_completion"},
                {"created", h.created},
                {"model", h.model},
                {"choices", json::array({std::move(choice)})}};
  if (include_usage) chunk["usage"] = nullptr;
  return chunk;
}

json usage_chunk_json(const ResponseHeader& h, const Usage& usage) {
  return {{"id", h.id},
          {"object", is_chat(h) ? "chat.completion.chunk" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"choices", json::array()},
          {"usage", usage_json(usage)}};
}

std::string json_text(const json& j) {
  // A token's own spelling (log-probabilities) can be part of a UTF-8 character; dump() would
  // throw on it.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(const json& j) { return "data: " + json_text(j) + "\n\n"; }

}  // namespace llama3::server

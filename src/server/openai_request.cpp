#include "server/openai_request.h"

#include <fmt/core.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "core/base64.h"
#include "server/api_error.h"

namespace llama3::server {
namespace {

using nlohmann::json;

constexpr int kMaxStopStrings = 16;
constexpr int kCompletionsDefaultMaxTokens = 16;  // OpenAI's default for /v1/completions

const char* type_name(const json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

ApiError wrong_type(const std::string& param, const json& v, const char* expected) {
  return invalid_param(param, fmt::format("'{}' must be {}, not {}", param, expected, type_name(v)), "invalid_type");
}

// An integer, also when written as 3.0 (JSON writers in some languages do that).
std::optional<int64_t> as_integer(const json& v) {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

// Typed access to the body's fields; null counts as absent, as in OpenAI's API.
class Fields {
 public:
  // `prefix` names a nested object's fields in errors ("stream_options.").
  explicit Fields(const json& body, std::string prefix = "") : body_(body), prefix_(std::move(prefix)) {}

  const json* find(const char* name) const {
    const auto it = body_.find(name);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<bool> boolean(const char* name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) throw wrong_type(prefix_ + name, *v, "a boolean");
    return v->get<bool>();
  }

  std::optional<int64_t> integer(const char* name, int64_t min, int64_t max) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    const std::optional<int64_t> i = as_integer(*v);
    if (!i) throw wrong_type(prefix_ + name, *v, "an integer");
    if (*i < min || *i > max) {
      throw invalid_param(prefix_ + name, max == std::numeric_limits<int64_t>::max()
                                    ? fmt::format("'{}{}' must be at least {}, got {}", prefix_, name, min, *i)
                                    : fmt::format("'{}{}' must be between {} and {}, got {}", prefix_, name, min, max, *i));
    }
    return i;
  }

  std::optional<double> number(const char* name, double min, double max) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw wrong_type(prefix_ + name, *v, "a number");
    const double d = v->get<double>();
    if (!(d >= min && d <= max)) {
      throw invalid_param(prefix_ + name,
                          fmt::format("'{}{}' must be between {} and {}, got {}", prefix_, name, min, max, d));
    }
    return d;
  }

  std::optional<std::string> string(const char* name) const {
    const json* v = find(name);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw wrong_type(prefix_ + name, *v, "a string");
    return v->get<std::string>();
  }

 private:
  const json& body_;
  std::string prefix_;
};

std::vector<int32_t> token_ids(const json& array, const std::string& param) {
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (const json& v : array) {
    const std::optional<int64_t> id = as_integer(v);
    if (!id) throw wrong_type(param, v, "an array of token ids (integers)");
    if (*id < 0 || *id > std::numeric_limits<int32_t>::max()) {
      throw invalid_param(param, fmt::format("token id {} in '{}' is out of range", *id, param));
    }
    ids.push_back(static_cast<int32_t>(*id));
  }
  return ids;
}

// An image_url part's image: the bytes of a data: URL ("data:image/png;base64,...").
std::string image_url_bytes(const json& part, const std::string& param) {
  const auto image_url = part.find("image_url");
  const json* url = nullptr;
  if (image_url != part.end() && image_url->is_object()) {
    const auto u = image_url->find("url");
    if (u != image_url->end()) url = &*u;
  } else if (image_url != part.end()) {
    url = &*image_url;  // the older form: "image_url": "data:..."
  }
  if (!url || !url->is_string()) throw invalid_param(param, "an image_url content part needs image_url.url (a string)");
  const std::string& s = url->get_ref<const std::string&>();
  if (s.rfind("data:", 0) != 0) {
    throw invalid_param(param, "image URLs must be data: URLs (data:image/png;base64,...); the server fetches nothing");
  }
  const size_t comma = s.find(',');
  if (comma == std::string::npos || s.substr(0, comma).find(";base64") == std::string::npos) {
    throw invalid_param(param, "an image data: URL must be base64 (data:image/png;base64,...)");
  }
  std::optional<std::string> bytes = decode_base64(std::string_view(s).substr(comma + 1));
  if (!bytes) throw invalid_param(param, "the image data: URL does not hold valid base64");
  return std::move(*bytes);
}

// `content` as a string, or as an array of {"type": "text", "text": ...} parts (joined) and
// {"type": "image_url", ...} parts (a vision model's images, appended to `images`: the chat
// format puts a message's images before its text).
std::string message_content(const json& content, const std::string& param, std::vector<std::string>& images) {
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw wrong_type(param, content, "a string or an array of content parts");
  std::string text;
  for (const json& part : content) {
    if (!part.is_object()) throw wrong_type(param, part, "an array of content parts (objects)");
    const auto type = part.find("type");
    if (type != part.end() && *type == "image_url") {
      images.push_back(image_url_bytes(part, param));
      continue;
    }
    if (type == part.end() || *type != "text") {
      throw invalid_param(param, fmt::format("content parts of type {} are not supported; only \"text\" and "
                                             "\"image_url\"",
                                             type == part.end() ? "(none)" : type->dump()));
    }
    const auto t = part.find("text");
    if (t == part.end() || !t->is_string()) throw invalid_param(param, "a text content part needs a string 'text'");
    text += t->get<std::string>();
  }
  return text;
}

std::vector<ChatMessage> chat_messages(const Fields& f, std::vector<std::string>& images) {
  const json* messages = f.find("messages");
  if (!messages) throw invalid_param("messages", "'messages' is required", "missing_required_parameter");
  if (!messages->is_array()) throw wrong_type("messages", *messages, "an array");
  if (messages->empty()) throw invalid_param("messages", "'messages' must hold at least one message");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!m.is_object()) throw wrong_type(param, m, "an object");
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) throw invalid_param(param + ".role", "each message needs a string 'role'");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant" && r != "tool") {
      throw invalid_param(param + ".role",
                          fmt::format("role \"{}\" is not supported; use system, developer, user, assistant or tool", r));
    }
    const auto content = m.find("content");
    const size_t images_before = images.size();
    std::string text = message_content(content == m.end() ? json() : *content, param + ".content", images);
    out.push_back({r, std::move(text), static_cast<int>(images.size() - images_before)});
  }
  return out;
}

void read_prompt(const Fields& f, GenerationRequest& g) {
  const json* prompt = f.find("prompt");
  if (!prompt) throw invalid_param("prompt", "'prompt' is required", "missing_required_parameter");
  if (prompt->is_string()) {
    g.prompt_text = prompt->get<std::string>();
    return;
  }
  if (!prompt->is_array()) throw wrong_type("prompt", *prompt, "a string or an array of token ids");
  if (prompt->empty()) throw invalid_param("prompt", "'prompt' is empty");
  if ((*prompt)[0].is_number()) {
    g.prompt_tokens = token_ids(*prompt, "prompt");
    return;
  }
  // The batch forms ["text"] and [[ids]] are accepted with one prompt: one choice per request.
  if (prompt->size() != 1) throw invalid_param("prompt", "only one prompt per request is supported");
  const json& only = (*prompt)[0];
  if (only.is_string()) {
    g.prompt_text = only.get<std::string>();
  } else if (only.is_array()) {
    g.prompt_tokens = token_ids(only, "prompt");
    if (g.prompt_tokens.empty()) throw invalid_param("prompt", "'prompt' is empty");
  } else {
    throw wrong_type("prompt", only, "a string or an array of token ids");
  }
}

std::vector<std::string> stop_strings(const Fields& f) {
  const json* stop = f.find("stop");
  if (!stop) return {};
  std::vector<std::string> out;
  if (stop->is_string()) {
    out.push_back(stop->get<std::string>());
  } else if (stop->is_array()) {
    for (const json& s : *stop) {
      if (!s.is_string()) throw wrong_type("stop", s, "a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    throw wrong_type("stop", *stop, "a string or an array of strings");
  }
  if (out.size() > static_cast<size_t>(kMaxStopStrings)) {
    throw invalid_param("stop", fmt::format("at most {} stop strings are supported", kMaxStopStrings));
  }
  for (const std::string& s : out) {
    if (s.empty()) throw invalid_param("stop", "stop strings must not be empty");
  }
  return out;
}

void read_sampling(const Fields& f, SamplingOptions& s) {
  // OpenAI's defaults (temperature 1, top_p 1, no top-k), not the engine's, so that a client
  // gets what the API documents.
  s.temperature = static_cast<float>(f.number("temperature", 0.0, 2.0).value_or(1.0));
  const double top_p = f.number("top_p", 0.0, 1.0).value_or(1.0);
  if (top_p <= 0.0) throw invalid_param("top_p", "'top_p' must be greater than 0 and at most 1");
  s.top_p = static_cast<float>(top_p);
  // top_k is an extension (vLLM's): -1 or 0 mean no limit.
  s.top_k = static_cast<int>(std::max<int64_t>(0, f.integer("top_k", -1, std::numeric_limits<int32_t>::max()).value_or(0)));
  if (const std::optional<int64_t> seed =
          f.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    s.seed = static_cast<uint64_t>(*seed);
  } else {
    static thread_local std::mt19937_64 random{std::random_device{}()};
    s.seed = random();
  }
}

void read_logprobs(const Fields& f, OpenAiRequest& r) {
  if (r.endpoint == Endpoint::completions) {
    // Completions: logprobs is the number of alternatives (0..5) per token.
    if (const std::optional<int64_t> n = f.integer("logprobs", 0, 5)) {
      r.logprobs = true;
      r.generation.top_logprobs = static_cast<int>(*n);
    }
    return;
  }
  r.logprobs = f.boolean("logprobs").value_or(false);
  const std::optional<int64_t> top = f.integer("top_logprobs", 0, 20);
  if (top && !r.logprobs) throw invalid_param("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
  if (r.logprobs) r.generation.top_logprobs = static_cast<int>(top.value_or(0));
}

}  // namespace

OpenAiRequest parse_request(Endpoint endpoint, std::string_view body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
    throw ApiError(400, "invalid_request_error",
                   fmt::format("the request body is not valid JSON ({})", e.what()), std::nullopt, "invalid_json");
  }
  if (!j.is_object()) throw ApiError(400, "invalid_request_error", "the request body must be a JSON object");
  const Fields f(j);

  OpenAiRequest r;
  r.endpoint = endpoint;
  GenerationRequest& g = r.generation;
  r.model = f.string("model");
  if (endpoint == Endpoint::chat_completions) {
    g.messages = chat_messages(f, g.images);
  } else {
    read_prompt(f, g);
    if (f.boolean("echo").value_or(false)) throw invalid_param("echo", "'echo' is not supported");
    if (f.integer("best_of", 1, 1000).value_or(1) != 1) throw invalid_param("best_of", "only 'best_of' 1 is supported");
    if (f.string("suffix")) throw invalid_param("suffix", "'suffix' is not supported");
  }

  if (f.integer("n", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()).value_or(1) != 1) {
    throw invalid_param("n", "only 'n' 1 is supported");
  }
  // Either spelling of the limit; the newer max_completion_tokens wins when both are given.
  const auto max_limit = std::numeric_limits<int64_t>::max();
  const std::optional<int64_t> max_tokens = f.integer("max_tokens", std::numeric_limits<int64_t>::min(), max_limit);
  const std::optional<int64_t> max_completion =
      f.integer("max_completion_tokens", std::numeric_limits<int64_t>::min(), max_limit);
  r.max_tokens = max_completion ? max_completion : max_tokens;
  if (r.max_tokens && *r.max_tokens <= 0) {
    throw invalid_param(max_completion ? "max_completion_tokens" : "max_tokens",
                        fmt::format("'{}' must be at least 1, got {}",
                                    max_completion ? "max_completion_tokens" : "max_tokens", *r.max_tokens));
  }

  read_sampling(f, g.sampling);
  read_logprobs(f, r);
  r.stop = stop_strings(f);
  if (const json* ids = f.find("stop_token_ids")) {
    if (!ids->is_array()) throw wrong_type("stop_token_ids", *ids, "an array of token ids");
    g.stop_tokens = token_ids(*ids, "stop_token_ids");
  }
  g.ignore_eos = f.boolean("ignore_eos").value_or(false);

  r.stream = f.boolean("stream").value_or(false);
  if (const json* options = f.find("stream_options")) {
    if (!options->is_object()) throw wrong_type("stream_options", *options, "an object");
    if (!r.stream) throw invalid_param("stream_options", "'stream_options' is only allowed when 'stream' is true");
    r.include_usage = Fields(*options, "stream_options.").boolean("include_usage").value_or(false);
  }
  return r;
}

void fit_to_context(OpenAiRequest& request, int64_t prompt_tokens, int64_t max_seq_len) {
  const char* param = request.endpoint == Endpoint::chat_completions ? "messages" : "prompt";
  if (prompt_tokens >= max_seq_len) {
    throw invalid_param(param,
                        fmt::format("this model's maximum context length is {} tokens; the prompt has {} tokens, "
                                    "leaving no room for a completion",
                                    max_seq_len, prompt_tokens),
                        "context_length_exceeded");
  }
  int64_t max_tokens = 0;
  if (request.max_tokens) {
    max_tokens = *request.max_tokens;
  } else if (request.endpoint == Endpoint::completions) {
    max_tokens = kCompletionsDefaultMaxTokens;
  } else {
    max_tokens = max_seq_len - prompt_tokens;
  }
  if (prompt_tokens + max_tokens > max_seq_len) {
    throw invalid_param(request.max_tokens ? "max_tokens" : param,
                        fmt::format("this model's maximum context length is {} tokens; {} were requested ({} in the "
                                    "prompt, {} for the completion)",
                                    max_seq_len, prompt_tokens + max_tokens, prompt_tokens, max_tokens),
                        "context_length_exceeded");
  }
  request.generation.max_tokens = max_tokens;
}

}  // namespace llama3::server

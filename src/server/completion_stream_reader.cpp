#include "server/completion_stream_reader.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

namespace llama3::server {
namespace {

using nlohmann::json;

// Enough of a bad event to recognize it in a report, not a whole prompt's worth.
std::string excerpt(std::string_view s) {
  constexpr size_t kMax = 120;
  return s.size() <= kMax ? std::string(s) : std::string(s.substr(0, kMax)) + "...";
}

std::optional<int64_t> integer_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

}  // namespace

void CompletionStreamReader::fail(std::string message) {
  if (problem_.empty()) problem_ = std::move(message);
}

int CompletionStreamReader::feed(std::string_view bytes) {
  pending_.append(bytes);
  int with_text = 0;
  size_t start = 0;
  // Events end with a blank line; the server writes "\n" line ends (as OpenAI's and vLLM's do).
  for (size_t end; (end = pending_.find("\n\n", start)) != std::string::npos; start = end + 2) {
    if (event(std::string_view(pending_).substr(start, end - start))) ++with_text;
  }
  pending_.erase(0, start);
  return with_text;
}

bool CompletionStreamReader::event(std::string_view event) {
  std::string payload;
  bool has_data = false;
  size_t pos = 0;
  while (pos <= event.size()) {
    size_t end = event.find('\n', pos);
    if (end == std::string_view::npos) end = event.size();
    const std::string_view line = event.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.starts_with(":")) continue;  // a comment: the server's keep-alive
    if (!line.starts_with("data:")) {
      fail(fmt::format("an SSE line that is neither data nor a comment: '{}'", excerpt(line)));
      return false;
    }
    std::string_view value = line.substr(5);
    if (value.starts_with(" ")) value.remove_prefix(1);
    if (has_data) payload += '\n';  // several data lines make one payload
    payload += value;
    has_data = true;
  }
  return has_data && data(payload);
}

bool CompletionStreamReader::data(std::string_view payload) {
  if (done_) {
    fail(fmt::format("an event after data: [DONE]: '{}'", excerpt(payload)));
    return false;
  }
  if (payload == "[DONE]") {
    done_ = true;
    return false;
  }
  json chunk;
  try {
    chunk = json::parse(payload);
  } catch (const json::exception&) {
    fail(fmt::format("an event that is not JSON: '{}'", excerpt(payload)));
    return false;
  }
  if (!chunk.is_object()) {
    fail(fmt::format("an event that is not a JSON object: '{}'", excerpt(payload)));
    return false;
  }
  if (const auto error = chunk.find("error"); error != chunk.end()) {
    const bool has_message = error->is_object() && error->contains("message") && (*error)["message"].is_string();
    fail("an error event: " + (has_message ? (*error)["message"].get<std::string>() : excerpt(payload)));
    return false;
  }
  if (const auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
    prompt_tokens_ = integer_field(*usage, "prompt_tokens");
    completion_tokens_ = integer_field(*usage, "completion_tokens");
    if (const auto details = usage->find("prompt_tokens_details"); details != usage->end() && details->is_object()) {
      cached_tokens_ = integer_field(*details, "cached_tokens");
    }
  }
  const auto choices = chunk.find("choices");
  if (choices == chunk.end() || !choices->is_array()) {
    fail(fmt::format("a chunk without a 'choices' array: '{}'", excerpt(payload)));
    return false;
  }
  bool with_text = false;
  for (const json& choice : *choices) {
    if (!choice.is_object()) {
      fail(fmt::format("a choice that is not an object: '{}'", excerpt(payload)));
      return false;
    }
    // Completions put the text in "text", chat in "delta.content".
    const json* text = nullptr;
    if (const auto t = choice.find("text"); t != choice.end()) text = &*t;
    if (const auto d = choice.find("delta"); d != choice.end() && d->is_object()) {
      if (const auto c = d->find("content"); c != d->end()) text = &*c;
    }
    if (text && !text->is_null()) {
      if (!text->is_string()) {
        fail(fmt::format("a chunk whose text is not a string: '{}'", excerpt(payload)));
        return false;
      }
      const std::string& piece = text->get_ref<const std::string&>();
      if (!piece.empty()) {
        if (finish_reason_) {
          fail(fmt::format("text after the finish_reason: '{}'", excerpt(payload)));
          return false;
        }
        text_ += piece;
        with_text = true;
      }
    }
    if (const auto reason = choice.find("finish_reason"); reason != choice.end() && !reason->is_null()) {
      if (!reason->is_string()) {
        fail(fmt::format("a finish_reason that is not a string: '{}'", excerpt(payload)));
        return false;
      }
      if (finish_reason_) {
        fail(fmt::format("a second finish_reason: '{}'", excerpt(payload)));
        return false;
      }
      finish_reason_ = reason->get<std::string>();
    }
  }
  if (with_text) ++content_events_;
  return with_text;
}

void CompletionStreamReader::finish() {
  if (!pending_.empty()) fail(fmt::format("the stream ended inside an event: '{}'", excerpt(pending_)));
  if (!done_) fail("the stream ended without data: [DONE]");
  if (!finish_reason_) fail("no finish_reason");
  if (text_.empty()) fail(fmt::format("empty output (finish_reason {})", finish_reason_.value_or("none")));
}

}  // namespace llama3::server

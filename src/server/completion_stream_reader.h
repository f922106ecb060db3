#pragma once
// The client's side of a streamed completion (/v1/completions or /v1/chat/completions with
// "stream": true): splits the bytes into SSE events as they arrive, reads OpenAI's chunks (text,
// finish_reason, usage, an error event) and notes the first way the stream is malformed.
// `llama3 bench-serve` validates every response through it.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llama3::server {

class CompletionStreamReader {
 public:
  // Feeds bytes as they arrive, in pieces of any size; returns how many events carrying output
  // text they completed (what a client sees as "a token arrived").
  int feed(std::string_view bytes);
  // Once the response has ended: notes a stream that was cut short or carried no answer.
  void finish();

  // The first problem found; empty while the stream is well-formed.
  const std::string& problem() const { return problem_; }
  bool done() const { return done_; }  // `data: [DONE]` was read
  const std::string& text() const { return text_; }
  int content_events() const { return content_events_; }
  const std::optional<std::string>& finish_reason() const { return finish_reason_; }
  // From the usage chunk (stream_options.include_usage), when the server sent one.
  std::optional<int64_t> prompt_tokens() const { return prompt_tokens_; }
  std::optional<int64_t> completion_tokens() const { return completion_tokens_; }
  std::optional<int64_t> cached_tokens() const { return cached_tokens_; }

 private:
  bool event(std::string_view event);  // true when it carried text
  bool data(std::string_view payload);
  void fail(std::string message);

  std::string pending_;  // bytes of an event not complete yet
  std::string problem_;
  bool done_ = false;
  std::string text_;
  int content_events_ = 0;
  std::optional<std::string> finish_reason_;
  std::optional<int64_t> prompt_tokens_;
  std::optional<int64_t> completion_tokens_;
  std::optional<int64_t> cached_tokens_;
};

}  // namespace llama3::server

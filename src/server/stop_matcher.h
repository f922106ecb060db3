#pragma once
// Finds stop strings in text that arrives a token at a time. Text that could still be the start
// of a stop string is held back until the next token decides it, so a streaming client never
// sees a prefix of a stop string that later completes.
#include <string>
#include <string_view>
#include <vector>

namespace llama3::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds generated text; returns the text now safe to send. After a stop string is found it
  // returns the text before it, and nothing from then on.
  std::string feed(std::string_view text);
  // At the end of generation: the text still held back (empty once stopped).
  std::string flush();

  bool stopped() const { return stopped_; }
  // Bytes released so far: the offset, in the whole generated text, up to which it is decided.
  size_t released() const { return released_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  size_t released_ = 0;
  bool stopped_ = false;
};

}  // namespace llama3::server

#pragma once
// Turns the engine's token events into what a client is sent: text cut at the first stop
// string, and the log-probabilities of the tokens whose text was sent. One per request; not
// thread-safe (the handler thread owns it).
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "llama3/engine.h"
#include "server/stop_matcher.h"

namespace llama3::server {

struct LogprobEntry {
  std::string token;   // the token's own text
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;  // the most likely tokens at this position
  size_t text_offset = 0;  // where the token's text starts in the completion
};

struct OutputDelta {
  std::string text;
  std::vector<LogprobEntry> logprobs;
  bool empty() const { return text.empty() && logprobs.empty(); }
};

class OutputAssembler {
 public:
  // `token_text` spells a token id (for log-probabilities; called only when `logprobs`).
  OutputAssembler(std::vector<std::string> stops, bool logprobs, std::function<std::string(int32_t)> token_text);

  // One generated token; returns what may be sent now.
  OutputDelta add(const TokenEvent& event);
  // Generation ended (not by a stop string): everything still held back.
  OutputDelta finish();

  bool stopped() const { return matcher_.stopped(); }
  int64_t tokens() const { return tokens_; }  // tokens taken, up to the one that completed a stop string

 private:
  OutputDelta release(std::string text, bool all);

  StopMatcher matcher_;
  bool logprobs_;
  std::function<std::string(int32_t)> token_text_;
  std::vector<LogprobEntry> held_;  // entries whose text is not yet released
  size_t generated_bytes_ = 0;      // all text received, stop strings included
  int64_t tokens_ = 0;
};

}  // namespace llama3::server

#pragma once
// One conversation with the engine, in the Llama 3 chat format, kept as token ids: the previous
// turns are sent again exactly as they were generated, so the engine's prefix cache finds their
// KV blocks and each turn prefills little more than the new message (its blocks are full blocks
// of the same ids; a re-encoded text could tokenize differently and miss).
//
// The terminal side (line editing, signals, printing) is chat_command.cpp; this file only knows
// the engine and the conversation.
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama3/engine.h"

namespace llama3::apps {

struct TurnResult {
  std::string reply;
  FinishReason reason = FinishReason::stop;
  bool interrupted = false;     // stopped by the user (Ctrl-C)
  bool context_full = false;    // the reply ran into the end of the context
  int64_t prompt_tokens = 0;    // the whole conversation sent
  int64_t prefilled_tokens = 0; // of which computed this turn (the rest came from the cache)
  int64_t reply_tokens = 0;
  int dropped_turns = 0;        // oldest exchanges dropped so the message fits
  double ttft_ms = 0.0;
  double total_ms = 0.0;
  double tokens_per_s() const {
    return reply_tokens > 1 && total_ms > ttft_ms ? 1000.0 * static_cast<double>(reply_tokens - 1) / (total_ms - ttft_ms)
                                                   : 0.0;
  }
};

class ChatSession {
 public:
  ChatSession(Engine& engine, std::optional<std::string> system, SamplingOptions sampling, int64_t max_reply_tokens);

  // Sends one user message and streams the reply through `on_text` (called on the engine's
  // thread). Returns when the reply is complete, or soon after `interrupt` becomes true (the
  // partial reply is kept in the conversation). Throws llama3::Error for a message that cannot
  // fit the context even alone (the conversation is unchanged).
  TurnResult send(const std::string& message, const std::function<void(const std::string&)>& on_text,
                  const std::atomic<bool>& interrupt);

  void reset();  // forget every turn (the system prompt stays)
  nlohmann::json to_json() const;  // {"system": ..., "messages": [{"role", "content"}...]}

  int64_t context_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  int64_t context_limit() const { return engine_.model_info().max_seq_len; }
  int turns() const { return static_cast<int>(messages_.size() / 2); }
  const std::vector<TurnResult>& history() const { return results_; }

 private:
  // One message in the chat format (header, content, <|eot_id|>), without the BOS; with the
  // assistant's header after it when the model is to reply next.
  std::vector<int32_t> turn_tokens(const std::string& role, const std::string& content,
                                   bool with_generation_prompt) const;
  void drop_oldest_exchange();

  Engine& engine_;
  std::optional<std::string> system_;
  SamplingOptions sampling_;
  int64_t max_reply_tokens_;
  std::vector<ChatMessage> messages_;           // user, assistant, user, assistant, ...
  std::vector<std::vector<int32_t>> segments_;  // each message's ids (the assistant's as generated)
  std::vector<int32_t> tokens_;                 // BOS + system + every segment
  size_t head_size_ = 1;                        // BOS + system: what every conversation starts with
  std::vector<TurnResult> results_;
  uint64_t turn_counter_ = 0;
};

}  // namespace llama3::apps

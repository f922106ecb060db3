#include "apps/chat_session.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/error.h"

namespace llama3::apps {

namespace {

// Llama 3's special tokens (the same ids in every Llama 3 tokenizer).
constexpr int32_t kBeginOfText = 128000;
constexpr int32_t kStartHeader = 128006;
constexpr int32_t kEndOfTurn = 128009;

}  // namespace

ChatSession::ChatSession(Engine& engine, std::optional<std::string> system, SamplingOptions sampling,
                         int64_t max_reply_tokens)
    : engine_(engine), system_(std::move(system)), sampling_(sampling), max_reply_tokens_(max_reply_tokens) {
  check(max_reply_tokens_ >= 1, "the reply limit must be at least one token");
  reset();
}

std::vector<int32_t> ChatSession::turn_tokens(const std::string& role, const std::string& content,
                                              bool with_generation_prompt) const {
  // The engine encodes a dialog as BOS, each message's header, content and <|eot_id|>, then the
  // assistant's header: drop the BOS, and the assistant header when it is not wanted.
  GenerationRequest r;
  r.messages = {{role, content}};
  std::vector<int32_t> ids = engine_.encode_prompt(r);
  check(!ids.empty() && ids.front() == kBeginOfText, "the chat format must start with <|begin_of_text|>");
  ids.erase(ids.begin());
  if (!with_generation_prompt) {
    const auto header = std::find(ids.rbegin(), ids.rend(), kStartHeader);
    check(header != ids.rend(), "the chat format must end with the assistant's header");
    ids.erase(std::prev(header.base()), ids.end());
  }
  return ids;
}

void ChatSession::reset() {
  messages_.clear();
  segments_.clear();
  results_.clear();
  tokens_ = {kBeginOfText};
  if (system_) {
    const std::vector<int32_t> sys = turn_tokens("system", *system_, false);
    tokens_.insert(tokens_.end(), sys.begin(), sys.end());
  }
  head_size_ = tokens_.size();
}

void ChatSession::drop_oldest_exchange() {
  messages_.erase(messages_.begin(), messages_.begin() + 2);
  segments_.erase(segments_.begin(), segments_.begin() + 2);
  tokens_.resize(head_size_);
  for (const auto& seg : segments_) tokens_.insert(tokens_.end(), seg.begin(), seg.end());
}

TurnResult ChatSession::send(const std::string& message, const std::function<void(const std::string&)>& on_text,
                             const std::atomic<bool>& interrupt) {
  const std::vector<int32_t> user = turn_tokens("user", message, true);
  const int64_t limit = context_limit();
  TurnResult result;
  // Room for the message and at least one token of reply; the oldest exchanges go first.
  while (context_tokens() + static_cast<int64_t>(user.size()) + 1 > limit && !messages_.empty()) {
    drop_oldest_exchange();
    ++result.dropped_turns;
  }
  check(context_tokens() + static_cast<int64_t>(user.size()) + 1 <= limit,
        "the message has {} tokens; with the system prompt ({} tokens) it does not fit the context of {} tokens",
        user.size(), context_tokens(), limit);

  GenerationRequest req;
  req.prompt_tokens = tokens_;
  req.prompt_tokens.insert(req.prompt_tokens.end(), user.begin(), user.end());
  req.sampling = sampling_;
  req.sampler_stream = turn_counter_++;  // a fresh random stream per turn
  req.max_tokens = std::min<int64_t>(max_reply_tokens_, limit - static_cast<int64_t>(req.prompt_tokens.size()));
  req.reuse_all_cached_blocks = true;
  const int64_t prompt_size = static_cast<int64_t>(req.prompt_tokens.size());

  std::mutex mu;
  std::condition_variable cv;
  std::optional<Completion> done;
  std::vector<int32_t> reply_ids;
  std::string reply;
  RequestCallbacks cb;
  cb.on_token = [&](const TokenEvent& ev) {
    {
      const std::lock_guard lock(mu);
      reply_ids.push_back(ev.token);
      reply += ev.text;
    }
    if (!ev.text.empty() && on_text) on_text(ev.text);
  };
  cb.on_done = [&](const Completion& c) {
    {
      const std::lock_guard lock(mu);
      done = c;
    }
    cv.notify_all();
  };
  const uint64_t id = engine_.submit(std::move(req), std::move(cb));
  bool cancelled = false;
  {
    std::unique_lock lock(mu);
    while (!done) {
      cv.wait_for(lock, std::chrono::milliseconds(30));
      if (interrupt && !cancelled && !done) {
        cancelled = true;
        lock.unlock();
        engine_.cancel(id);
        lock.lock();
      }
    }
  }
  const Completion& c = *done;
  check(c.reason != FinishReason::error, "{}", c.error);

  // The reply as generated, ending with <|eot_id|> whatever ended it: the stop token (never
  // computed into the cache) is replaced, a cut-off reply is closed.
  if (c.stop_token && !reply_ids.empty() && reply_ids.back() == *c.stop_token) reply_ids.pop_back();
  reply_ids.push_back(kEndOfTurn);
  messages_.push_back({"user", message});
  messages_.push_back({"assistant", reply});
  segments_.push_back(user);
  segments_.push_back(reply_ids);
  tokens_.insert(tokens_.end(), user.begin(), user.end());
  tokens_.insert(tokens_.end(), reply_ids.begin(), reply_ids.end());

  result.reply = reply;
  result.reason = c.reason;
  result.interrupted = c.reason == FinishReason::cancelled;
  result.context_full = c.reason == FinishReason::length && prompt_size + c.completion_tokens >= limit;
  result.prompt_tokens = c.prompt_tokens;
  result.prefilled_tokens = c.prompt_tokens - c.cached_prompt_tokens;
  result.reply_tokens = c.completion_tokens;
  result.ttft_ms = c.ttft_ms;
  result.total_ms = c.total_ms;
  results_.push_back(result);
  return result;
}

nlohmann::json ChatSession::to_json() const {
  nlohmann::json messages = nlohmann::json::array();
  if (system_) messages.push_back({{"role", "system"}, {"content", *system_}});
  for (const ChatMessage& m : messages_) messages.push_back({{"role", m.role}, {"content", m.content}});
  return {{"messages", messages}, {"context_tokens", context_tokens()}, {"context_limit", context_limit()}};
}

}  // namespace llama3::apps

#include "server/output_assembler.h"

namespace llama3::server {

OutputAssembler::OutputAssembler(std::vector<std::string> stops, bool logprobs,
                                 std::function<std::string(int32_t)> token_text)
    : matcher_(std::move(stops)), logprobs_(logprobs), token_text_(std::move(token_text)) {}

OutputDelta OutputAssembler::add(const TokenEvent& event) {
  if (matcher_.stopped()) return {};
  ++tokens_;
  if (logprobs_) {
    LogprobEntry entry;
    entry.token = token_text_(event.token);
    entry.logprob = event.logprob ? event.logprob->logprob : 0.0f;
    for (const TokenLogprob& t : event.top_logprobs) entry.top.emplace_back(token_text_(t.token), t.logprob);
    entry.text_offset = generated_bytes_;
    held_.push_back(std::move(entry));
  }
  generated_bytes_ += event.text.size();
  return release(matcher_.feed(event.text), false);
}

OutputDelta OutputAssembler::finish() {
  if (matcher_.stopped()) return {};
  return release(matcher_.flush(), true);
}

OutputDelta OutputAssembler::release(std::string text, bool all) {
  OutputDelta delta;
  delta.text = std::move(text);
  // A token's log-probability goes out with the first byte of its text; after a stop string
  // the tokens that only spelled it are dropped, as their text is.
  const size_t end = matcher_.released();
  size_t n = 0;
  while (n < held_.size() && ((all && !matcher_.stopped()) || held_[n].text_offset < end)) ++n;
  delta.logprobs.assign(std::make_move_iterator(held_.begin()), std::make_move_iterator(held_.begin() + n));
  held_.erase(held_.begin(), held_.begin() + n);
  if (matcher_.stopped()) held_.clear();
  return delta;
}

}  // namespace llama3::server

#include "tokenizer/stream_decoder.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace llama3::tokenizer {

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_->token_name(id);
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(pending_.data());
  size_t i = 0;
  while (i < pending_.size()) {
    const utf8::Sequence s = utf8::check_sequence(p + i, pending_.size() - i);
    if (s.status == utf8::SequenceStatus::kIncomplete) break;  // wait for the next token
    if (s.status == utf8::SequenceStatus::kValid) {
      out.append(pending_, i, s.length);
    } else {
      out += utf8::kReplacement;
    }
    i += s.length;
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  utf8::append_replacing_invalid(pending_, out);
  pending_.clear();
  return out;
}

}  // namespace llama3::tokenizer

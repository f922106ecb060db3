#include "tokenizer/long_text_splitter.h"

#include <algorithm>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace llama3::tokenizer {

namespace {

bool python_isspace(const unsigned char* p, int& length) {
  if (p[0] < 0x80) {
    length = 1;
    return (p[0] >= 0x09 && p[0] <= 0x0D) || (p[0] >= 0x1C && p[0] <= 0x20);
  }
  return unicode::classify(utf8::decode_valid(p, length)) & unicode::kPySpace;
}

}  // namespace

void split_long_text(std::string_view text, const std::function<void(std::string_view)>& on_piece,
                     size_t max_chars, size_t max_consecutive) {
  const auto* data = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  // Fast path: a text shorter than the run limit (in bytes, so in characters too) needs no cut.
  if (size <= std::min(max_consecutive, max_chars)) {
    if (size) on_piece(text);
    return;
  }
  size_t pos = 0;
  while (pos < size) {
    // One chunk of at most max_chars characters, split like Meta's
    // _split_whitespaces_or_nonwhitespaces (the run state restarts with every chunk).
    size_t slice_start = pos;
    size_t run_length = 0;
    bool run_is_space = false;
    size_t chars = 0;
    while (pos < size && chars < max_chars) {
      int length = 0;
      const bool is_space = python_isspace(data + pos, length);
      if (chars == 0) run_is_space = is_space;
      if (is_space != run_is_space) {
        run_length = 1;
        run_is_space = is_space;
      } else if (++run_length > max_consecutive) {
        on_piece(text.substr(slice_start, pos - slice_start));
        slice_start = pos;
        run_length = 1;
      }
      pos += length;
      ++chars;
    }
    on_piece(text.substr(slice_start, pos - slice_start));
  }
}

}  // namespace llama3::tokenizer

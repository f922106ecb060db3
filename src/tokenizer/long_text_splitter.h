#pragma once
// Meta's Llama 3 tokenizer never hands tiktoken a whole long text: it cuts the text into pieces
// of at most 400,000 characters, and each of those where a run of white space or of non-white
// space grows past 25,000 characters. Pieces are then encoded independently, so the cuts change
// the ids of such inputs; we cut at the same places to give Meta's ids. "White space" here is
// Python's str.isspace(), which Meta's code calls (it differs from Unicode White_Space on
// U+001C..U+001F).
#include <cstddef>
#include <functional>
#include <string_view>

namespace llama3::tokenizer {

inline constexpr size_t kMaxEncodeChars = 400'000;
inline constexpr size_t kMaxConsecutiveChars = 25'000;

// Calls `on_piece` with each piece of valid UTF-8 `text`, in order (nothing for empty text).
void split_long_text(std::string_view text, const std::function<void(std::string_view)>& on_piece,
                     size_t max_chars = kMaxEncodeChars,
                     size_t max_consecutive = kMaxConsecutiveChars);

}  // namespace llama3::tokenizer

#pragma once
// The Llama 3 pre-tokenizer: splits text into the pieces that tiktoken's regex
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// finds, as a hand-written scanner over code points. A scanner instead of a regex engine keeps
// encode above 20 MB/s and linear in the input whatever it holds (docs/TOKENIZER.md has the
// measurements against PCRE2). \s is Unicode White_Space, as in the Rust regex engine tiktoken
// uses; case-insensitive contractions fold as that engine does ('ſ' U+017F matches 's').
#include <cstddef>
#include <string_view>

namespace llama3::tokenizer {

class PieceScanner {
 public:
  // `text` must be valid UTF-8 (Tokenizer::encode replaces invalid sequences first).
  explicit PieceScanner(std::string_view text) : text_(text) {}

  // Sets `piece` to the next piece and returns true, or returns false at the end.
  bool next(std::string_view& piece);

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace llama3::tokenizer

#pragma once
// UTF-8 checks shared by the encoder (input policy) and the decoders (output policy).
// Invalid input is never passed on: each maximal ill-formed subpart (the Unicode "substitution
// of maximal subparts" practice, which Python's errors="replace" and WHATWG's TextDecoder
// follow) becomes one U+FFFD.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace llama3::tokenizer::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class SequenceStatus { kValid, kInvalid, kIncomplete };

struct Sequence {
  SequenceStatus status;
  size_t length;  // kValid: bytes of the character; kInvalid: bytes of the maximal ill-formed
                  // subpart (>= 1); kIncomplete: bytes present (a valid prefix that ran out)
};

// Classifies the sequence that starts at data[0] (size >= 1).
Sequence check_sequence(const unsigned char* data, size_t size);

// Byte offset of the first invalid or truncated sequence (overlong forms, surrogates and code
// points above U+10FFFF are invalid), or npos if `text` is all valid UTF-8.
size_t first_invalid(std::string_view text);

inline bool is_valid(std::string_view text) { return first_invalid(text) == std::string_view::npos; }

// Appends `text` to `out`, each maximal ill-formed subpart (and a truncated sequence at the
// end) replaced by U+FFFD.
void append_replacing_invalid(std::string_view text, std::string& out);

// Decodes the code point at `p` of a string known to be valid UTF-8; sets `length`.
inline uint32_t decode_valid(const unsigned char* p, int& length) {
  const uint32_t b0 = p[0];
  if (b0 < 0x80) {
    length = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    length = 2;
    return ((b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    length = 3;
    return ((b0 & 0x0F) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3F);
  }
  length = 4;
  return ((b0 & 0x07) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3F);
}

}  // namespace llama3::tokenizer::utf8

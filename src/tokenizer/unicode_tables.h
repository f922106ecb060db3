#pragma once
// Per-code-point classes for the Llama 3 pre-tokenizer, from a two-stage table generated out of
// the Unicode Character Database (see generate_unicode_tables.py). Two stages keep the table
// small (the planes are mostly unassigned) while a lookup stays two loads.
#include <cstdint>

namespace llama3::tokenizer::unicode {

enum Class : uint8_t {
  kLetter = 1,      // \p{L}
  kNumber = 2,      // \p{N}
  kWhiteSpace = 4,  // \s as tiktoken's regex engine defines it: Unicode White_Space
  kPySpace = 8,     // Python's str.isspace(), which Meta's long-input splitter uses
};

inline constexpr int kBlockShift = 7;
inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;

extern const uint16_t kBlockIndex[(kMaxCodePoint + 1) >> kBlockShift];
extern const uint8_t kBlocks[][1 << kBlockShift];

// Class bits of code point `cp` (0 for anything past U+10FFFF).
inline uint8_t classify(uint32_t cp) {
  if (cp > kMaxCodePoint) return 0;
  return kBlocks[kBlockIndex[cp >> kBlockShift]][cp & ((1u << kBlockShift) - 1)];
}

}  // namespace llama3::tokenizer::unicode

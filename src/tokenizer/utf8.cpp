#include "tokenizer/utf8.h"

#include <cstring>

namespace llama3::tokenizer::utf8 {

Sequence check_sequence(const unsigned char* data, size_t size) {
  const unsigned char b0 = data[0];
  if (b0 < 0x80) return {SequenceStatus::kValid, 1};
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (Table 3-7)
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return {SequenceStatus::kInvalid, 1};
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= size) return {SequenceStatus::kIncomplete, i};
    const unsigned char b = data[i];
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {SequenceStatus::kInvalid, i};
  }
  return {SequenceStatus::kValid, need};
}

namespace {

// Length of the leading run of ASCII bytes, eight at a time.
size_t ascii_prefix(const unsigned char* p, size_t size) {
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    if (word & 0x8080808080808080ull) break;
  }
  while (i < size && p[i] < 0x80) ++i;
  return i;
}

}  // namespace

size_t first_invalid(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    i += ascii_prefix(p + i, size - i);
    if (i >= size) break;
    const Sequence s = check_sequence(p + i, size - i);
    if (s.status != SequenceStatus::kValid) return i;
    i += s.length;
  }
  return std::string_view::npos;
}

void append_replacing_invalid(std::string_view text, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  out.reserve(out.size() + size);
  size_t i = 0;
  while (i < size) {
    const size_t ascii = ascii_prefix(p + i, size - i);
    out.append(text.data() + i, ascii);
    i += ascii;
    if (i >= size) break;
    const Sequence s = check_sequence(p + i, size - i);
    if (s.status == SequenceStatus::kValid) {
      out.append(text.data() + i, s.length);
    } else {
      out.append(kReplacement);
    }
    i += s.length;
  }
}

}  // namespace llama3::tokenizer::utf8

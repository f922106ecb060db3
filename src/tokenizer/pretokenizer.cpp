#include "tokenizer/pretokenizer.h"

#include <array>
#include <cstdint>

#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace llama3::tokenizer {

namespace {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kWhiteSpace;

// One decoded code point: its value, its class bits and its length in bytes (0 past the end,
// where the class is 0 too, so "is a letter" and friends are simply false there).
struct Char {
  uint32_t cp = 0;
  uint8_t cls = 0;
  uint8_t len = 0;
};

// ASCII classes, hard-coded so the common case never touches the big table.
constexpr std::array<uint8_t, 128> kAsciiClass = [] {
  std::array<uint8_t, 128> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = kLetter;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = kLetter;
  for (int c = '0'; c <= '9'; ++c) t[c] = kNumber;
  for (int c : {'\t', '\n', '\v', '\f', '\r', ' '}) t[c] = kWhiteSpace;
  return t;
}();

class Cursor {
 public:
  explicit Cursor(std::string_view text)
      : data_(reinterpret_cast<const unsigned char*>(text.data())), size_(text.size()) {}

  Char at(size_t pos) const {
    if (pos >= size_) return {};
    const unsigned char b = data_[pos];
    if (b < 0x80) return {b, kAsciiClass[b], 1};
    int len = 0;
    const uint32_t cp = utf8::decode_valid(data_ + pos, len);
    return {cp, unicode::classify(cp), static_cast<uint8_t>(len)};
  }
  size_t size() const { return size_; }

 private:
  const unsigned char* data_;
  size_t size_;
};

bool is_letter(const Char& c) { return c.cls & kLetter; }
bool is_number(const Char& c) { return c.cls & kNumber; }
bool is_space(const Char& c) { return c.cls & kWhiteSpace; }
bool is_newline(const Char& c) { return c.len && (c.cp == '\r' || c.cp == '\n'); }
// [^\s\p{L}\p{N}]: punctuation, symbols, marks, controls that are not white space...
bool is_other(const Char& c) { return c.len && !(c.cls & (kLetter | kNumber | kWhiteSpace)); }

// Case-insensitive letter test as the regex engine's simple case folding does it.
bool folds_to(const Char& c, char lower) {
  if (c.cp == static_cast<uint32_t>(lower) || c.cp == static_cast<uint32_t>(lower - 'a' + 'A')) {
    return true;
  }
  return lower == 's' && c.cp == 0x017F;  // LATIN SMALL LETTER LONG S folds to 's'
}

// Length in bytes of a contraction ('s 't 're 've 'm 'll 'd) at `pos`, or 0.
size_t contraction(const Cursor& cur, size_t pos) {
  const Char c1 = cur.at(pos + 1);
  if (!c1.len) return 0;
  for (char single : {'s', 't', 'm', 'd'}) {
    if (folds_to(c1, single)) return 1 + c1.len;
  }
  static constexpr char kPairs[][2] = {{'r', 'e'}, {'v', 'e'}, {'l', 'l'}};
  for (const auto& pair : kPairs) {
    if (!folds_to(c1, pair[0])) continue;
    const Char c2 = cur.at(pos + 1 + c1.len);
    if (folds_to(c2, pair[1])) return 1 + c1.len + c2.len;
  }
  return 0;
}

size_t skip_letters(const Cursor& cur, size_t pos) {
  for (Char c = cur.at(pos); is_letter(c); c = cur.at(pos)) pos += c.len;
  return pos;
}

}  // namespace

bool PieceScanner::next(std::string_view& piece) {
  const Cursor cur(text_);
  const size_t start = pos_;
  if (start >= cur.size()) return false;
  const Char c0 = cur.at(start);
  size_t end = start;

  if (c0.cp == '\'' && (end = contraction(cur, start)) != 0) {
    end += start;  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  } else if (is_letter(c0)) {
    end = skip_letters(cur, start);  // \p{L}+
  } else if (!is_newline(c0) && !is_number(c0) && is_letter(cur.at(start + c0.len))) {
    end = skip_letters(cur, start + c0.len);  // [^\r\n\p{L}\p{N}]\p{L}+
  } else if (is_number(c0)) {
    end = start;  // \p{N}{1,3}
    for (int i = 0; i < 3; ++i) {
      const Char c = cur.at(end);
      if (!is_number(c)) break;
      end += c.len;
    }
  } else if (is_other(c0) || (c0.cp == ' ' && is_other(cur.at(start + 1)))) {
    end = c0.cp == ' ' ? start + 1 : start;  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    for (Char c = cur.at(end); is_other(c); c = cur.at(end)) end += c.len;
    for (Char c = cur.at(end); is_newline(c); c = cur.at(end)) end += c.len;
  } else {
    // c0 is white space. Scan the whole run once: \s*[\r\n]+ ends after its last newline;
    // otherwise \s+(?!\S) leaves the run's last character to prefix the next word, unless the
    // run ends the text or is a single character (then \s+ takes it).
    size_t run_end = start;
    size_t last_start = start;
    size_t after_newline = 0;
    for (Char c = cur.at(run_end); is_space(c); c = cur.at(run_end)) {
      last_start = run_end;
      run_end += c.len;
      if (is_newline(c)) after_newline = run_end;
    }
    if (after_newline) {
      end = after_newline;
    } else if (run_end == cur.size() || last_start == start) {
      end = run_end;
    } else {
      end = last_start;
    }
  }
  pos_ = end;
  piece = text_.substr(start, end - start);
  return true;
}

}  // namespace llama3::tokenizer

#include "tokenizer/byte_level_vocab.h"

#include <array>
#include <vector>

#include "core/error.h"

namespace llama3::tokenizer {

namespace {

// GPT-2's alphabet: byte b is code point b when printable, else the next free one from U+0100.
// Every code point it uses is below kAlphabetEnd (U+0144), so it takes one or two UTF-8 bytes.
constexpr uint32_t kAlphabetEnd = 256 + 68;

struct Alphabet {
  std::array<uint16_t, 256> code_point{};    // byte -> code point
  std::array<int16_t, kAlphabetEnd> byte{};  // code point -> byte, -1 where none
};

constexpr Alphabet make_alphabet() {
  Alphabet a;
  for (auto& b : a.byte) b = -1;
  uint32_t shifted = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : shifted++;
    a.code_point[b] = static_cast<uint16_t>(cp);
    a.byte[cp] = static_cast<int16_t>(b);
  }
  return a;
}

constexpr Alphabet kAlphabet = make_alphabet();

}  // namespace

std::string to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const uint32_t cp = kAlphabet.code_point[static_cast<unsigned char>(c)];
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

std::optional<std::string> from_byte_level(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = p[i];
    if (cp >= 0x80) {  // only two-byte sequences can be in the alphabet
      if (cp < 0xC2 || cp > 0xDF || i + 1 >= text.size() || (p[i + 1] & 0xC0) != 0x80) {
        return std::nullopt;
      }
      cp = ((cp & 0x1F) << 6) | (p[i + 1] & 0x3F);
      i += 2;
    } else {
      i += 1;
    }
    if (cp >= kAlphabetEnd || kAlphabet.byte[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(kAlphabet.byte[cp]));
  }
  return out;
}

std::optional<MergeText> split_merge(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == 0 || space == std::string_view::npos || space + 1 == text.size() ||
      text.find(' ', space + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return MergeText{text.substr(0, space), text.substr(space + 1)};
}

TokenTextIndex index_token_texts(std::span<const std::string_view> texts, std::string_view where) {
  TokenTextIndex ids;
  ids.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto [it, added] = ids.emplace(texts[i], static_cast<int32_t>(i));
    if (!added) fail("{}: tokens {} and {} are both '{}'", where, it->second, i, texts[i]);
  }
  return ids;
}

BpeModel byte_level_bpe(std::span<const std::string_view> texts, const TokenTextIndex& ids,
                        std::span<const MergeText> merges, bool whole_piece_lookup,
                        std::string_view where) {
  const auto count = static_cast<int64_t>(texts.size());
  std::vector<std::string> tokens(texts.size());
  for (size_t id = 0; id < texts.size(); ++id) {
    auto bytes = from_byte_level(texts[id]);
    if (!bytes) fail("{}: token {} '{}' is not byte-level BPE text", where, id, texts[id]);
    tokens[id] = std::move(*bytes);
  }
  auto find = [&](std::string_view text) -> int32_t {
    const auto it = ids.find(text);
    return it != ids.end() && it->second < count ? it->second : -1;
  };
  std::vector<BpeModel::Merge> resolved(merges.size());
  std::string joined;
  for (size_t i = 0; i < merges.size(); ++i) {
    const MergeText& m = merges[i];
    joined.assign(m.left);
    joined += m.right;
    const int32_t left = find(m.left), right = find(m.right), merged = find(joined);
    if (left < 0 || right < 0 || merged < 0) {
      fail("{}: merge {} ('{}' + '{}') uses a token missing from the vocabulary", where, i, m.left,
           m.right);
    }
    resolved[i] = {left, right, static_cast<int32_t>(i), merged};
  }
  try {
    return BpeModel::from_merges(std::move(tokens), resolved, whole_piece_lookup);
  } catch (const Error& e) {
    fail("{}: {}", where, e.what());
  }
}

}  // namespace llama3::tokenizer

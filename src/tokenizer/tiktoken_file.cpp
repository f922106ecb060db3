// Loader for Meta's tokenizer.model (the tiktoken rank format).
#include <fmt/format.h>

#include <array>
#include <charconv>
#include <optional>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/tokenizer_data.h"

namespace llama3::tokenizer {

namespace {

constexpr int32_t kLlama3Ranks = 128000;
constexpr int kSpecialCount = 256;

// Strict base64 (standard alphabet, '=' padding only at the end): a corrupted line must be an
// error, where Python's lenient b64decode would quietly skip characters.
std::optional<std::string> decode_base64(std::string_view text) {
  static constexpr auto kValues = [] {
    std::array<int8_t, 256> v{};
    v.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) v[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return v;
  }();
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  while (padding < 2 && text[text.size() - 1 - padding] == '=') ++padding;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    const int8_t v = kValues[static_cast<unsigned char>(text[i])];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (acc & ((1u << bits) - 1)) return std::nullopt;  // non-canonical trailing bits
  return out;
}

}  // namespace

std::vector<std::string> llama31_special_names() {
  std::vector<std::string> names = {
      "<|begin_of_text|>",        "<|end_of_text|>",          "<|reserved_special_token_0|>",
      "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
      "<|start_header_id|>",      "<|end_header_id|>",        "<|eom_id|>",
      "<|eot_id|>",               "<|python_tag|>"};
  for (int i = 3; names.size() < kSpecialCount; ++i) {
    names.push_back(fmt::format("<|reserved_special_token_{}|>", i));
  }
  return names;
}

TokenizerData load_tiktoken_file(const std::string& path) {
  const std::string text = read_file(path, "tokenizer file");
  std::vector<std::string> tokens;
  std::vector<bool> seen;
  tokens.reserve(kLlama3Ranks);
  size_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    check(space != std::string_view::npos && line.find(' ', space + 1) == std::string_view::npos,
          "{}:{}: expected `base64 rank`, got '{}' (file truncated or not a tokenizer.model?)",
          path, line_number, line.substr(0, 80));
    const std::string_view encoded = line.substr(0, space);
    const std::string_view rank_text = line.substr(space + 1);
    const auto bytes = decode_base64(encoded);
    check(bytes.has_value(), "{}:{}: token '{}' is not valid base64", path, line_number,
          encoded.substr(0, 80));
    int64_t rank = -1;
    const auto [end, ec] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    check(ec == std::errc() && end == rank_text.data() + rank_text.size() && rank >= 0 &&
              rank < kLlama3Ranks,
          "{}:{}: rank '{}' is not an integer in [0, {})", path, line_number,
          rank_text.substr(0, 40), kLlama3Ranks);
    if (tokens.size() <= static_cast<size_t>(rank)) {
      tokens.resize(rank + 1);
      seen.resize(rank + 1);
    }
    check(!seen[rank], "{}:{}: rank {} appears twice", path, line_number, rank);
    seen[rank] = true;
    tokens[rank] = *bytes;
  }
  size_t count = 0;
  for (bool s : seen) count += s;
  check(count == kLlama3Ranks,
        "{}: has {} ranks, a Llama 3 tokenizer.model has {} (file truncated?)", path, count,
        kLlama3Ranks);
  TokenizerData data;
  try {
    data.bpe = BpeModel::from_ranks(std::move(tokens));
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  data.special_names = llama31_special_names();
  return data;
}

}  // namespace llama3::tokenizer

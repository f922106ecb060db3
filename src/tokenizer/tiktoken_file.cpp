// Loader for Meta's tokenizer.model (the tiktoken rank format).
#include <fmt/format.h>

#include <array>
#include <charconv>
#include <optional>

#include "core/error.h"
#include "core/file_io.h"
#include "core/base64.h"
#include "tokenizer/tokenizer_data.h"

namespace llama3::tokenizer {

namespace {

constexpr int32_t kLlama3Ranks = 128000;
constexpr int kSpecialCount = 256;


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

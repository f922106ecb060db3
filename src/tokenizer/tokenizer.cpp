#include "tokenizer/tokenizer.h"

#include <fstream>

#include "core/error.h"
#include "tokenizer/long_text_splitter.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/utf8.h"

namespace llama3::tokenizer {

namespace {

// JSON files start with '{' (after optional white space); tiktoken files with base64.
bool looks_like_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char c = 0;
  while (in.get(c)) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return c == '{';
  }
  return false;
}

}  // namespace

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), "tokenizer file not found: {}",
        path.string());
  return Tokenizer(looks_like_json(path) ? load_hf_tokenizer_file(path.string())
                                         : load_tiktoken_file(path.string()));
}

Tokenizer::Tokenizer(TokenizerData data)
    : bpe_(std::move(data.bpe)),
      special_names_(std::move(data.special_names)),
      special_types_(std::move(data.special_types)),
      declared_eos_id_(data.declared_eos_id),
      pad_id_(data.pad_id),
      chat_template_(std::move(data.chat_template)) {
  for (size_t i = 0; i < special_names_.size(); ++i) {
    const int32_t id = bpe_.size() + static_cast<int32_t>(i);
    check(special_ids_.emplace(special_names_[i], id).second, "special token '{}' appears twice",
          special_names_[i]);
    longest_special_ = std::max(longest_special_, special_names_[i].size());
  }
  bos_id_ = special_id(data.bos_name);
  eos_id_ = special_id(data.eos_name);
  if (special_types_.empty()) special_types_.assign(special_names_.size(), TokenType::control);
  check(special_types_.size() == special_names_.size(), "{} special token types for {} names",
        special_types_.size(), special_names_.size());
  for (const TokenType type : special_types_) {
    check(type == TokenType::control || type == TokenType::user_defined,
          "special token type {} is neither control (3) nor user-defined (4)",
          static_cast<int32_t>(type));
  }
  for (const auto& id : {declared_eos_id_, pad_id_}) {
    if (id) check_id(*id);
  }
}

TokenType Tokenizer::token_type(int32_t id) const {
  check_id(id);
  return id < bpe_.size() ? TokenType::normal : special_types_[id - bpe_.size()];
}

int32_t Tokenizer::special_id(std::string_view name) const {
  const auto it = special_ids_.find(std::string(name));
  check(it != special_ids_.end(), "the tokenizer has no special token '{}'", name);
  return it->second;
}

void Tokenizer::check_id(int32_t id) const {
  check(id >= 0 && id < vocab_size(), "token id {} is out of range [0, {})", id, vocab_size());
}

std::string_view Tokenizer::token_name(int32_t id) const {
  check_id(id);
  if (id >= bpe_.size()) return special_names_[id - bpe_.size()];
  return bpe_.token_bytes(id);
}

void Tokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  PieceScanner scanner(text);
  std::string_view piece;
  while (scanner.next(piece)) bpe_.encode_piece(piece, out);
}

void Tokenizer::encode_with_specials(std::string_view text, std::vector<int32_t>& out) const {
  // Leftmost special name first, as tiktoken's special-token regex finds them. Every name of a
  // Llama 3 file has the shape <|...|>, so a candidate runs from "<|" to the next "|>"; other
  // shapes are tried name by name.
  size_t done = 0;
  size_t search = 0;
  while (search < text.size()) {
    const size_t open = text.find('<', search);
    if (open == std::string_view::npos) break;
    int32_t found = -1;
    size_t found_len = 0;
    const size_t close = text.find("|>", open + 1);
    if (close != std::string_view::npos && close + 2 - open <= longest_special_) {
      const auto it = special_ids_.find(std::string(text.substr(open, close + 2 - open)));
      if (it != special_ids_.end()) {
        found = it->second;
        found_len = close + 2 - open;
      }
    }
    if (found < 0) {
      for (size_t i = 0; i < special_names_.size(); ++i) {
        const std::string& name = special_names_[i];
        if (text.substr(open).starts_with(name) && name.size() > found_len) {
          found = bpe_.size() + static_cast<int32_t>(i);
          found_len = name.size();
        }
      }
    }
    if (found < 0) {
      search = open + 1;
      continue;
    }
    encode_ordinary(text.substr(done, open - done), out);
    out.push_back(found);
    done = search = open + found_len;
  }
  encode_ordinary(text.substr(done), out);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool bos, bool eos,
                                       bool allow_special) const {
  std::string sanitized;
  if (!utf8::is_valid(text)) {
    utf8::append_replacing_invalid(text, sanitized);
    text = sanitized;
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (bos) out.push_back(bos_id_);
  // Meta cuts very long inputs first and encodes the pieces independently (long_text_splitter.h).
  split_long_text(text, [&](std::string_view piece) {
    if (allow_special) {
      encode_with_specials(piece, out);
    } else {
      encode_ordinary(piece, out);
    }
  });
  if (eos) out.push_back(eos_id_);
  return out;
}

std::string Tokenizer::decode_bytes(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (const int32_t id : ids) out += token_name(id);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string bytes = decode_bytes(ids);
  if (utf8::is_valid(bytes)) return bytes;
  std::string out;
  utf8::append_replacing_invalid(bytes, out);
  return out;
}

}  // namespace llama3::tokenizer

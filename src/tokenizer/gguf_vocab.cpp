// The tokenizer read from and written as a GGUF file's tokenizer.ggml.* arrays.
#include "tokenizer/gguf_vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>

#include "core/error.h"
#include "tokenizer/byte_level_vocab.h"
#include "tokenizer/tokenizer.h"

namespace llama3::tokenizer {

namespace {

constexpr std::string_view kWhere = "GGUF vocabulary";

// The tokenizer.ggml.pre values llama.cpp (llama-vocab.cpp) tokenizes with Llama 3's regex, and
// whether it then looks a whole piece up before merging (tokenizer.json's "ignore_merges").
// "llama-bpe" is what convert_hf_to_gguf.py writes for Llama 3; "smaug-bpe" is a Llama 3
// fine-tune whose tokenizer.json lacks "ignore_merges".
struct PreTokenizer {
  std::string_view name;
  bool whole_piece_lookup;
};
constexpr std::array<PreTokenizer, 10> kLlama3PreTokenizers = {{
    {"llama-bpe", true},
    {"llama3", true},
    {"llama-v3", true},
    {"falcon3", true},
    {"falcon-h1", true},
    {"pixtral", true},
    {"midm-2.0", true},
    {"lfm2", true},
    {"jina-v5-nano", true},
    {"smaug-bpe", false},
}};

const PreTokenizer& llama3_pre_tokenizer(std::string_view pre) {
  check(!pre.empty(),
        "{}: no tokenizer.ggml.pre, so llama.cpp would split text with its GPT-2 'default' "
        "regex, not Llama 3's: reconvert the model with a current convert_hf_to_gguf.py",
        kWhere);
  for (const PreTokenizer& p : kLlama3PreTokenizers) {
    if (p.name == pre) return p;
  }
  std::vector<std::string_view> names;
  for (const PreTokenizer& p : kLlama3PreTokenizers) names.push_back(p.name);
  fail("{}: tokenizer.ggml.pre '{}' is not a pre-tokenizer with Llama 3's regex{} (supported: {})",
       kWhere, pre, pre == "default" ? " (llama.cpp's 'default' is GPT-2's)" : "",
       fmt::join(names, ", "));
}

std::string_view type_name(int32_t type) {
  switch (static_cast<TokenType>(type)) {
    case TokenType::normal:
      return "normal";
    case TokenType::unknown:
      return "unknown";
    case TokenType::control:
      return "control";
    case TokenType::user_defined:
      return "user-defined";
    case TokenType::unused:
      return "unused";
    case TokenType::byte:
      return "byte";
  }
  return "undefined";
}

bool is_special_type(int32_t type) {
  return type == static_cast<int32_t>(TokenType::control) ||
         type == static_cast<int32_t>(TokenType::user_defined);
}

}  // namespace

TokenizerData load_gguf_vocab(const VocabArrays& v) {
  check(v.model == "gpt2",
        "{}: tokenizer.ggml.model is '{}'{}; only 'gpt2' (byte-level BPE, Llama 3's) is supported",
        kWhere, v.model, v.model == "llama" ? " (SentencePiece, Llama 1 and 2)" : "");
  const PreTokenizer& pre = llama3_pre_tokenizer(v.pre);
  const size_t n = v.tokens.size();
  check(n > 0, "{}: tokenizer.ggml.tokens is empty", kWhere);
  check(n < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
        "{}: tokenizer.ggml.tokens has {} entries, too many for int32 ids", kWhere, n);
  check(v.token_types.size() == n,
        "{}: tokenizer.ggml.tokens has {} entries but tokenizer.ggml.token_type has {}", kWhere, n,
        v.token_types.size());

  // Normal tokens make the BPE model (ids 0..bpe_count-1); the special ones must all follow.
  size_t bpe_count = 0;
  while (bpe_count < n && v.token_types[bpe_count] == static_cast<int32_t>(TokenType::normal)) {
    ++bpe_count;
  }
  for (size_t id = bpe_count; id < n; ++id) {
    const int32_t type = v.token_types[id];
    if (type == static_cast<int32_t>(TokenType::normal)) {
      fail(
          "{}: token {} '{}' is normal but follows special token {} '{}'; special tokens must "
          "come after all normal ones",
          kWhere, id, v.tokens[id], bpe_count, v.tokens[bpe_count]);
    }
    if (!is_special_type(type)) {
      fail(
          "{}: token {} '{}' has type {} ({}); only normal (1), control (3) and user-defined (4) "
          "tokens are supported",
          kWhere, id, v.tokens[id], type, type_name(type));
    }
  }

  const TokenTextIndex ids = index_token_texts(v.tokens, kWhere);
  std::vector<MergeText> merges(v.merges.size());
  for (size_t i = 0; i < v.merges.size(); ++i) {
    const auto merge = split_merge(v.merges[i]);
    if (!merge) {
      fail("{}: tokenizer.ggml.merges[{}] '{}' is not two tokens separated by a space", kWhere, i,
           v.merges[i]);
    }
    merges[i] = *merge;
  }
  TokenizerData data;
  data.bpe = byte_level_bpe(std::span(v.tokens).first(bpe_count), ids, merges,
                            pre.whole_piece_lookup, kWhere);
  for (size_t id = bpe_count; id < n; ++id) {
    check(!v.tokens[id].empty(), "{}: special token {} is empty", kWhere, id);
    data.special_names.emplace_back(v.tokens[id]);
    data.special_types.push_back(static_cast<TokenType>(v.token_types[id]));
  }

  auto checked_id = [&](std::optional<int32_t> id, std::string_view key) {
    if (id) {
      check(*id >= 0 && static_cast<size_t>(*id) < n,
            "{}: tokenizer.ggml.{} {} is out of range [0, {})", kWhere, key, *id, n);
    }
    return id;
  };
  if (const auto bos = checked_id(v.bos_id, "bos_token_id")) {
    check(static_cast<size_t>(*bos) >= bpe_count,
          "{}: tokenizer.ggml.bos_token_id {} is '{}', a normal token; it must be a special one",
          kWhere, *bos, v.tokens[*bos]);
    data.bos_name = v.tokens[*bos];
  }
  data.declared_eos_id = checked_id(v.eos_id, "eos_token_id");
  data.pad_id = checked_id(v.pad_id, "padding_token_id");
  // encode(..., eos=true) appends <|end_of_text|> as for the other files; a vocabulary without
  // it appends its declared eos.
  const bool has_end_of_text = std::find(data.special_names.begin(), data.special_names.end(),
                                         data.eos_name) != data.special_names.end();
  if (!has_end_of_text && data.declared_eos_id &&
      static_cast<size_t>(*data.declared_eos_id) >= bpe_count) {
    data.eos_name = v.tokens[*data.declared_eos_id];
  }
  data.chat_template = v.chat_template;
  return data;
}

Tokenizer Tokenizer::from_vocab(const VocabArrays& vocab) {
  TokenizerData data = load_gguf_vocab(vocab);
  try {
    return Tokenizer(std::move(data));
  } catch (const Error& e) {  // e.g. no special token named like the BOS
    fail("{}: {}", kWhere, e.what());
  }
}

OwnedVocabArrays Tokenizer::to_vocab() const {
  OwnedVocabArrays out;
  out.model = "gpt2";
  out.pre = bpe_.whole_piece_lookup() ? "llama-bpe" : "smaug-bpe";
  out.tokens.reserve(vocab_size());
  out.token_types.reserve(vocab_size());
  for (int32_t id = 0; id < vocab_size(); ++id) {
    out.tokens.push_back(is_special(id) ? std::string(token_name(id))
                                        : to_byte_level(token_name(id)));
    out.token_types.push_back(static_cast<int32_t>(token_type(id)));
  }
  const std::vector<BpeModel::Merge> merges = bpe_.merges();
  out.merges.reserve(merges.size());
  for (const BpeModel::Merge& m : merges) {
    out.merges.push_back(out.tokens[m.left] + ' ' + out.tokens[m.right]);
  }
  out.bos_id = bos_id_;
  out.eos_id = declared_eos_id_.value_or(eos_id_);
  out.pad_id = pad_id_;
  out.chat_template = chat_template_;
  return out;
}

VocabArrays OwnedVocabArrays::view() const {
  return VocabArrays{model,
                     pre,
                     std::vector<std::string_view>(tokens.begin(), tokens.end()),
                     token_types,
                     std::vector<std::string_view>(merges.begin(), merges.end()),
                     bos_id,
                     eos_id,
                     pad_id,
                     chat_template};
}

}  // namespace llama3::tokenizer

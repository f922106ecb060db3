#pragma once
// The tokenizer as a GGUF file stores it: the tokenizer.ggml.* keys and tokenizer.chat_template
// that llama.cpp's convert_hf_to_gguf.py writes for a Llama 3 model. Plain arrays, so that the
// GGUF reader and writer (src/io/) stay outside this library. docs/TOKENIZER.md has the details.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llama3::tokenizer {

// What Tokenizer::from_vocab reads. The views must stay valid during the call only.
struct VocabArrays {
  std::string_view model;                // tokenizer.ggml.model: "gpt2" (byte-level BPE)
  std::string_view pre;                  // tokenizer.ggml.pre: "llama-bpe"; empty: key absent
  std::vector<std::string_view> tokens;  // tokenizer.ggml.tokens, byte-level text ("Ġthe")
                                         // for normal tokens, the names of special ones
  std::vector<int32_t> token_types;      // tokenizer.ggml.token_type (TokenType values)
  std::vector<std::string_view> merges;  // tokenizer.ggml.merges, "Ġ t", in rank order
  std::optional<int32_t> bos_id;         // tokenizer.ggml.bos_token_id
  std::optional<int32_t> eos_id;         // tokenizer.ggml.eos_token_id
  std::optional<int32_t> pad_id;         // tokenizer.ggml.padding_token_id
  std::string_view chat_template;        // tokenizer.chat_template; empty: key absent
};

// What Tokenizer::to_vocab gives: the same arrays, owning their strings.
struct OwnedVocabArrays {
  std::string model;
  std::string pre;
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
  std::optional<int32_t> pad_id;
  std::string chat_template;  // empty: write no tokenizer.chat_template

  // Views into this object (valid while it lives unchanged), for from_vocab.
  VocabArrays view() const;
  bool operator==(const OwnedVocabArrays&) const = default;
};

}  // namespace llama3::tokenizer

#pragma once
// What a tokenizer file provides, whatever its format: the BPE model (ids 0..N-1) and the
// special tokens that follow it (ids N, N+1, ...), with the names of the ones encode needs.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/bpe_model.h"

namespace llama3::tokenizer {

// llama.cpp's token types, as GGUF's tokenizer.ggml.token_type stores them. A Llama 3 vocabulary
// has normal BPE tokens and control special tokens; user_defined marks an added token that its
// tokenizer.json does not call special.
enum class TokenType : int32_t {
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

struct TokenizerData {
  BpeModel bpe;
  std::vector<std::string> special_names;  // special_names[i] is id bpe.size() + i
  // control or user_defined, one per special name; empty: all control.
  std::vector<TokenType> special_types;
  std::string bos_name = "<|begin_of_text|>";
  std::string eos_name = "<|end_of_text|>";  // what encode(..., eos=true) appends, as Meta does

  // What the files declare beyond what encoding needs, kept so the tokenizer can be written into
  // a GGUF file. The declared end of sequence is tokenizer_config.json's eos_token (Llama 3.1
  // Instruct: <|eot_id|>), which llama.cpp's converter writes as tokenizer.ggml.eos_token_id.
  std::optional<int32_t> declared_eos_id;
  std::optional<int32_t> pad_id;
  std::string chat_template;  // empty: none known
};

// Meta's Llama 3 tokenizer.model: `base64(token bytes) rank` per line, exactly 128000 ranks;
// the 256 special tokens get the Llama 3.1 names.
TokenizerData load_tiktoken_file(const std::string& path);

// Hugging Face tokenizer.json (byte-level BPE with the Llama 3 pre-tokenizer); reads the
// tokenizer_config.json beside it, when there is one, for the BOS token's name and what
// TokenizerData keeps for GGUF (eos and pad tokens, chat template). Special names are the file's
// own; an added token is control when the file calls it special or its name looks special
// (<|...|>), user_defined otherwise, as llama.cpp's converter decides.
TokenizerData load_hf_tokenizer_file(const std::string& path);

// A GGUF file's vocabulary (gguf_vocab.h).
struct VocabArrays;
TokenizerData load_gguf_vocab(const VocabArrays& vocab);

// The Llama 3.1 names of the 256 special tokens 128000..128255.
std::vector<std::string> llama31_special_names();

}  // namespace llama3::tokenizer

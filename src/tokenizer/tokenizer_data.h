#pragma once
// What a tokenizer file provides, whatever its format: the BPE model (ids 0..N-1) and the
// special tokens that follow it (ids N, N+1, ...), with the names of the ones encode needs.
#include <string>
#include <vector>

#include "tokenizer/bpe_model.h"

namespace llama3::tokenizer {

struct TokenizerData {
  BpeModel bpe;
  std::vector<std::string> special_names;  // special_names[i] is id bpe.size() + i
  std::string bos_name = "<|begin_of_text|>";
  std::string eos_name = "<|end_of_text|>";  // what encode(..., eos=true) appends, as Meta does
};

// Meta's Llama 3 tokenizer.model: `base64(token bytes) rank` per line, exactly 128000 ranks;
// the 256 special tokens get the Llama 3.1 names.
TokenizerData load_tiktoken_file(const std::string& path);

// Hugging Face tokenizer.json (byte-level BPE with the Llama 3 pre-tokenizer); reads the
// tokenizer_config.json beside it, when there is one, for the BOS token's name. Special names
// are the file's own.
TokenizerData load_hf_tokenizer_file(const std::string& path);

// The Llama 3.1 names of the 256 special tokens 128000..128255.
std::vector<std::string> llama31_special_names();

}  // namespace llama3::tokenizer

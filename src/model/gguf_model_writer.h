#pragma once
// Writes a model as a GGUF file llama.cpp loads: its tensor names and metadata, q/k rows in
// its (= Meta's) RoPE order, rope_freqs.weight for Llama 3.1 scaling, the tokenizer, and every
// matrix in one type ("pure" files: the tied embedding/LM head included), norms in F32.
// Q8_0 and Q4_0 are ggml's block layouts exactly; a matrix already held in that format is
// written losslessly (its packed blocks unpacked back), others are quantized with ggml's
// reference rounding, so our file equals what llama.cpp's own quantizer makes from the same
// values.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/ggml_type.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace llama3::model {

// The tokenizer as GGUF stores it (tokenizer.ggml.*), filled by the caller from its tokenizer.
struct GgufVocab {
  std::vector<std::string> tokens;   // byte-level BPE strings, by id
  std::vector<int32_t> token_types;  // 1 normal, 3 control, 4 user-defined, ...
  std::vector<std::string> merges;   // "a b", by rank
  int32_t bos_id = 128000;
  int32_t eos_id = 128009;
  std::optional<std::string> chat_template;
};

// `type`: F32, F16, BF16, Q8_0 or Q4_0. Writes atomically (temporary name, then rename).
void write_gguf_model(const ModelConfig& config, const ModelWeights& weights, const GgufVocab& vocab, GgmlType type,
                      const std::filesystem::path& path, const std::string& model_name);

// llama.cpp's general.file_type for a pure file of `type`.
uint32_t llama_file_type(GgmlType type);

}  // namespace llama3::model

#pragma once
// Loads a Llama checkpoint folder into ModelWeights:
//  - Meta: params.json + consolidated.00.pth ... consolidated.NN.pth (model-parallel shards,
//    merged here), or + consolidated.safetensors as written by `llama3 repack`;
//  - Hugging Face: config.json + model.safetensors or sharded model-*.safetensors with an index;
//  - GGUF: a .gguf file, or a folder holding one (model/gguf_checkpoint.h).
// Hugging Face q_proj/k_proj rows are un-permuted to Meta's RoPE layout here, once.
#include <cstdint>
#include <filesystem>
#include <optional>

#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/precision.h"
#include "model/shard_plan.h"

namespace llama3::model {

enum class CheckpointFormat { Meta, HuggingFace, Gguf };

struct LoadedCheckpoint {
  ModelConfig config;
  ModelWeights weights;
  CheckpointFormat format;
  int64_t shards = 1;
};

// `path`: a Meta or Hugging Face folder, a .gguf file, or a folder holding exactly one .gguf.
CheckpointFormat detect_checkpoint_format(const std::filesystem::path& path);
// True when `path` is a .gguf file, or a folder with no params.json / config.json that holds
// a .gguf; never throws (a folder holding only a tokenizer is not a model).
bool is_gguf_source(const std::filesystem::path& path);
// The .gguf file `path` names (itself, or the only one in the folder); throws otherwise.
std::filesystem::path gguf_file_of(const std::filesystem::path& path);

// The config of the checkpoint at `path` (any format), without loading weights.
ModelConfig checkpoint_config(const std::filesystem::path& path);

// `layers`: keep only the first N layers (read only those tensors). Matrices come out in the
// formats `precision` gives (model/matrix_convert.h). `share`: one rank's share of a
// tensor-parallel mesh (shard_plan.h): only its slices are read and converted, each bitwise
// the same as that slice of the whole model's; the files are mapped, and the pages of what was
// converted are released again, so the rank's resident memory is about its share.
LoadedCheckpoint load_checkpoint(const std::filesystem::path& dir, std::optional<int64_t> layers = {},
                                 const PrecisionMap& precision = precision_mode("bf16"), Share share = {});

// Row order of Hugging Face q/k projections: HF stores, per head, the first halves of Meta's
// RoPE pairs then the second halves. meta_row -> hf_row for a head-major [n_heads*hd] layout.
int64_t hf_row_of_meta_row(int64_t meta_row, int64_t head_dim);

}  // namespace llama3::model

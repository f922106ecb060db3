#pragma once
// Loads a Llama checkpoint folder into ModelWeights:
//  - Meta: params.json + consolidated.00.pth ... consolidated.NN.pth (model-parallel shards,
//    merged here), or + consolidated.safetensors as written by `llama3 repack`;
//  - Hugging Face: config.json + model.safetensors or sharded model-*.safetensors with an index.
// Hugging Face q_proj/k_proj rows are un-permuted to Meta's RoPE layout here, once.
#include <cstdint>
#include <filesystem>
#include <optional>

#include "model/model_config.h"
#include "model/model_weights.h"

namespace llama3::model {

enum class CheckpointFormat { Meta, HuggingFace };

struct LoadedCheckpoint {
  ModelConfig config;
  ModelWeights weights;
  CheckpointFormat format;
  int64_t shards = 1;
};

CheckpointFormat detect_checkpoint_format(const std::filesystem::path& dir);

// `layers`: keep only the first N layers (read only those tensors).
LoadedCheckpoint load_checkpoint(const std::filesystem::path& dir, std::optional<int64_t> layers = {});

// Row order of Hugging Face q/k projections: HF stores, per head, the first halves of Meta's
// RoPE pairs then the second halves. meta_row -> hf_row for a head-major [n_heads*hd] layout.
int64_t hf_row_of_meta_row(int64_t meta_row, int64_t head_dim);

}  // namespace llama3::model

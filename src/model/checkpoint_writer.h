#pragma once
// Writes loaded weights back out as a checkpoint folder:
//  - Meta layout: consolidated.safetensors with Meta names, what `llama3 repack` writes next to
//    the checkpoint's own params.json: loading it maps the bf16 tensors in place;
//  - Hugging Face layout (config.json + model.safetensors, HF names, q/k rows permuted as
//    Hugging Face stores them), what `llama3 convert` writes, e.g. to benchmark loading.
#include <filesystem>
#include <map>
#include <string>

#include "model/model_config.h"
#include "model/model_weights.h"

namespace llama3::model {

void write_meta_safetensors(const ModelConfig& config, const ModelWeights& weights,
                            const std::filesystem::path& dir, const std::map<std::string, std::string>& metadata = {});

void write_hf_folder(const ModelConfig& config, const ModelWeights& weights, const std::filesystem::path& dir);

}  // namespace llama3::model

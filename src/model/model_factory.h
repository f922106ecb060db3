#pragma once
// Builds the model a command asks for: a checkpoint folder (LLAMA_DIR / HF_MODEL / --model_dir)
// or deterministic random weights of a preset's shape.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "model/llama_model.h"

namespace llama3::model {

struct ModelRequest {
  std::string preset = "Llama-3.2-1B";    // used for random weights only
  std::optional<std::string> weights;      // random | instruct | general; unset: checkpoint if one is configured
  std::optional<int64_t> layers;           // keep the first N layers
  std::optional<std::string> model_dir;    // overrides LLAMA_DIR / HF_MODEL
  uint64_t seed = 0;                       // random weights
};

struct OpenedModel {
  std::unique_ptr<LlamaModel> model;
  std::string weights;  // random | instruct | general
  std::optional<std::filesystem::path> dir;  // checkpoint folder, if any
  std::string format;   // random | meta | huggingface
  double load_seconds = 0.0;
};

OpenedModel open_model(const ModelRequest& request);

}  // namespace llama3::model

#pragma once
// Builds the model a command asks for: a checkpoint (LLAMA_DIR / HF_MODEL / --model_dir: a Meta
// or Hugging Face folder, or a GGUF file) or deterministic random weights of a preset's shape,
// in the precision mode asked for, through the weight cache.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "model/llama_model.h"
#include "model/precision.h"

namespace llama3::model {

struct ModelRequest {
  std::string preset = "Llama-3.2-1B";    // used for random weights only
  std::optional<std::string> weights;      // random | instruct | general; unset: checkpoint if one is configured
  std::optional<int64_t> layers;           // keep the first N layers
  std::optional<std::string> model_dir;    // overrides LLAMA_DIR / HF_MODEL
  uint64_t seed = 0;                       // random weights
  // performance | accuracy | bf16 | native; unset: native for GGUF files, performance otherwise.
  std::optional<std::string> optimizations;
  std::optional<std::string> precision;    // JSON overrides of single keys (precision.h)
  std::optional<std::string> kv_cache;     // bf16 | f32 | q8 (--kv_cache); the precision's otherwise
  bool weight_cache = true;
  // N150 | N300 | T3K | TG or TxD: more than one rank runs the model tensor-parallel over the
  // ranks of an MPI job (mesh_open.h); the weight cache's folder is named after it.
  std::string mesh = "N150";
  // The all-reduces' payload on a mesh: fp32 | bf16 (LlamaModel::set_bf16_payload).
  std::string mesh_payload = "fp32";
  // Worker threads of the other ranks of a mesh (rank 0 sets its own from --threads): 0 leaves
  // each rank its default (dist::default_threads_per_rank).
  int threads = 0;
};

struct OpenedModel {
  std::unique_ptr<LlamaModel> model;
  std::string weights;  // random | instruct | general
  std::optional<std::filesystem::path> dir;  // checkpoint folder or file, if any
  std::string format;   // random | meta | huggingface | gguf
  PrecisionMap precision;
  std::string cache;    // what the weight cache did: off | not needed | loaded PATH | written PATH | not written: ...
  double load_seconds = 0.0;
};

OpenedModel open_model(const ModelRequest& request);

// What open_model would load, found without loading it (a checkpoint's config file or header,
// or the preset): the source, its shape with --layers applied, the precision, and an estimate
// of the weights' memory (from the shapes and formats; "native" matrices counted as bf16).
// Lets a command size its buffers, or refuse, before spending the time to load.
// On a mesh the figures are rank 0's share: each rank holds its slices (shard_plan.h), so the
// memory a rank needs is its share's, and its KV cache holds its own kv heads.
struct ModelPlan {
  std::optional<std::filesystem::path> dir;
  ModelConfig config;
  PrecisionMap precision;
  ShardPlan share;        // rank 0's slices of request.mesh (the whole model on one rank)
  ModelConfig kv_config;  // the shape of a rank's KV cache (shard_kv_config)
  size_t weight_bytes = 0;  // of the share
};
ModelPlan plan_model(const ModelRequest& request);

// open_model's work in one process: the share `share` of the planned model (the whole of it by
// default) from the weight cache, or loaded or generated and then cached; `group` carries the
// model's collectives (null: a model of one rank). A mesh's ranks each call it for their share.
OpenedModel open_local(const ModelRequest& request, const ModelPlan& plan, Share share = {},
                       dist::Communicator* group = nullptr);

// The weights' memory for a shape in a precision (from the shapes and formats; "native"
// matrices counted as bf16): of the whole model, or of one rank's share.
size_t estimated_weight_bytes(const ModelConfig& config, const PrecisionMap& precision);
size_t estimated_weight_bytes(const ModelConfig& config, const PrecisionMap& precision, const ShardPlan& share);

// The precision a request asks for, given the source's format (for the default mode).
PrecisionMap requested_precision(const ModelRequest& request, bool gguf_source);

}  // namespace llama3::model

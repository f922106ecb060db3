#pragma once
// Hyperparameters of a Llama 3 model: built-in presets with the published values, or parsed from
// Meta's params.json / Hugging Face's config.json into the same struct.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "vision/vision_config.h"

namespace llama3::model {

// Llama 3.1 RoPE frequency scaling ("rope_type": "llama3"). Llama 3.0 has none.
struct RopeScaling {
  bool enabled = false;
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

struct ModelConfig {
  std::string name = "custom";  // preset name, or "custom"
  int64_t dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;  // dim / n_heads
  int64_t ffn_dim = 0;   // hidden size of the SwiGLU MLP
  int64_t vocab_size = 128256;
  double norm_eps = 1e-5;
  double rope_theta = 500000.0;
  RopeScaling rope_scaling;
  // Per-frequency divisors (freq_i = theta^(-2i/head_dim) / divisor_i), when a GGUF file's
  // rope_freqs.weight holds factors that no Llama 3.1 scaling parameters reproduce; empty
  // otherwise (rope_scaling applies).
  std::vector<double> rope_freq_divisors;
  bool tied_embeddings = false;
  int64_t max_seq_len = 131072;
  // Llama 3.2 Vision: the text decoder's cross-attention layers, each given by the index of the
  // self-attention layer it runs just before (Meta's fusion schedule; Hugging Face numbers the
  // layers of both kinds together and is mapped to this), and the image encoder's shape
  // (vision.width 0: a text-only model). The image token is vocab_size: its embedding is row 0 of
  // `extra_embeddings` rows beyond the vocabulary (Meta's learnable_embedding; Hugging Face's
  // embed_tokens rows vocab_size..), and the LM head still has vocab_size rows.
  std::vector<int64_t> cross_attention_before;
  vision::VisionConfig vision;
  int64_t extra_embeddings = 0;

  bool has_vision() const { return vision.enabled(); }
  int64_t image_token_id() const { return vocab_size; }
  int64_t embedding_rows() const { return vocab_size + extra_embeddings; }
  int64_t cross_layers() const { return static_cast<int64_t>(cross_attention_before.size()); }

  // Throws llama3::Error when a value is missing or inconsistent.
  void validate() const;
  // bf16 bytes of all weights (what one decode step reads once per batch).
  int64_t weight_bytes_bf16() const;
  int64_t parameter_count() const;
};

// Meta's fusion schedule (CrossAttentionTransformerText._init_fusion_schedule): n_cross layers
// spread evenly from the last self-attention layer down, e.g. 3, 7, ..., 31 for 8 of 32.
std::vector<int64_t> meta_fusion_schedule(int64_t n_layers, int64_t n_cross);

// Meta's rule: hidden = 4*dim, two thirds of it, times ffn_dim_multiplier, rounded up to
// multiple_of.
int64_t llama_ffn_dim(int64_t dim, double ffn_dim_multiplier, int64_t multiple_of);

std::vector<std::string> preset_names();
ModelConfig preset(std::string_view name);  // throws listing the known presets

// The RoPE scaling factor a Meta checkpoint has when params.json says only "use_scaled_rope":
// 32 for the 3.2 1B/3B models, 8 for the others (Meta's reference code hard-codes 8).
double default_rope_factor_for(const ModelConfig& config);

ModelConfig config_from_meta_params(const nlohmann::json& params, std::string_view source);
ModelConfig config_from_hf_config(const nlohmann::json& config, std::string_view source);
// Reads params.json or config.json from a model folder.
ModelConfig load_model_config(const std::filesystem::path& dir);

// The preset whose shape matches, to name a checkpoint's config; "custom" otherwise.
std::string identify_preset(const ModelConfig& config);

// Keeps the first n layers (the demo's quick runs); n > n_layers is an error.
void truncate_layers(ModelConfig& config, int64_t n);

}  // namespace llama3::model

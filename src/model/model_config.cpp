#include "model/model_config.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "core/error.h"
#include "core/file_io.h"

namespace llama3::model {

using nlohmann::json;

int64_t llama_ffn_dim(int64_t dim, double ffn_dim_multiplier, int64_t multiple_of) {
  int64_t hidden = 4 * dim;
  hidden = 2 * hidden / 3;
  hidden = static_cast<int64_t>(ffn_dim_multiplier * static_cast<double>(hidden));
  return multiple_of * ((hidden + multiple_of - 1) / multiple_of);
}

std::vector<int64_t> meta_fusion_schedule(int64_t n_layers, int64_t n_cross) {
  check(n_cross >= 0 && n_cross <= n_layers, "{} cross-attention layers for {} self-attention layers", n_cross,
        n_layers);
  std::vector<int64_t> out;
  if (n_cross == 0) return out;
  const int64_t k = (n_layers + n_cross - 1) / n_cross;  // llama_layers[::-1][::k][:n_cross][::-1]
  for (int64_t l = n_layers - 1; l >= 0 && static_cast<int64_t>(out.size()) < n_cross; l -= k) out.push_back(l);
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {

struct PresetSpec {
  const char* name;
  int64_t dim, n_layers, n_heads, n_kv_heads;
  double ffn_multiplier;
  int64_t multiple_of;
  double rope_factor;
  bool tied;
  int64_t cross_attention_layers;
};

// Published hyperparameters (Meta's params.json of each release).
constexpr PresetSpec kPresets[] = {
    {"Llama-3.2-1B", 2048, 16, 32, 8, 1.5, 256, 32.0, true, 0},
    {"Llama-3.2-3B", 3072, 28, 24, 8, 1.0, 256, 32.0, true, 0},
    {"Llama-3.1-8B", 4096, 32, 32, 8, 1.3, 1024, 8.0, false, 0},
    {"Llama-3.2-11B-Vision", 4096, 32, 32, 8, 1.3, 1024, 8.0, false, 8},
    {"Llama-3.1-70B", 8192, 80, 64, 8, 1.3, 4096, 8.0, false, 0},
    {"Llama-3.3-70B", 8192, 80, 64, 8, 1.3, 4096, 8.0, false, 0},
};

ModelConfig from_spec(const PresetSpec& s) {
  ModelConfig c;
  c.name = s.name;
  c.dim = s.dim;
  c.n_layers = s.n_layers;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.head_dim = s.dim / s.n_heads;
  c.ffn_dim = llama_ffn_dim(s.dim, s.ffn_multiplier, s.multiple_of);
  c.rope_scaling.enabled = true;
  c.rope_scaling.factor = s.rope_factor;
  c.tied_embeddings = s.tied;
  if (s.cross_attention_layers > 0) {  // the 11B: Meta's encoder shape (its defaults), 8 extra embeddings
    c.cross_attention_before = meta_fusion_schedule(c.n_layers, s.cross_attention_layers);
    c.vision.width = 1280;
    c.vision.output_dim = c.dim;
    c.extra_embeddings = 8;
  }
  return c;
}

template <typename T>
T required(const json& j, const char* key, std::string_view source) {
  check(j.contains(key), "{}: missing field \"{}\"", source, key);
  const json& v = j.at(key);
  if constexpr (std::is_same_v<T, int64_t>) {
    // An integer, or a float with an integral value (some converters write 4096.0); never a
    // silent truncation of 2048.5, nor a conversion of 1e21 (undefined behaviour in the library).
    if (v.is_number_integer() && !(v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX)) return v.get<int64_t>();
    if (v.is_number_float()) {
      const double d = v.get<double>();
      check(std::isfinite(d) && d == std::floor(d) && std::abs(d) <= 9007199254740992.0,
            "{}: field \"{}\" must be an integer (got {})", source, key, d);
      return static_cast<int64_t>(d);
    }
    fail("{}: field \"{}\" must be an integer ({} given)", source, key, v.type_name());
  } else if constexpr (std::is_same_v<T, double>) {
    check(v.is_number(), "{}: field \"{}\" must be a number ({} given)", source, key, v.type_name());
    return v.get<double>();
  } else {
    try {
      return v.get<T>();
    } catch (const json::exception&) {
      fail("{}: field \"{}\" has the wrong type ({})", source, key, v.type_name());
    }
  }
}

template <typename T>
T optional(const json& j, const char* key, T fallback, std::string_view source) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  return required<T>(j, key, source);
}

}  // namespace

ModelConfig config_from_hf_text_config(const json& config, std::string_view source, bool mllama_text);

// Meta's multimodal params.json: the text keys plus vision_chunk_size, vision_max_num_chunks and
// vision_num_cross_attention_layers. Meta's code hard-codes the encoder (VisionConfig's defaults);
// the keys vision_width, vision_layers, vision_global_layers, vision_heads, vision_ffn,
// vision_patch_size and vision_intermediate_layers are ours, for checkpoints of other shapes.
void meta_vision_config(const json& params, int64_t n_cross, ModelConfig& c, std::string_view source) {
  vision::VisionConfig& v = c.vision;
  v.width = optional<int64_t>(params, "vision_width", 1280, source);
  v.layers = optional<int64_t>(params, "vision_layers", v.layers, source);
  v.global_layers = optional<int64_t>(params, "vision_global_layers", v.global_layers, source);
  v.heads = optional<int64_t>(params, "vision_heads", v.heads, source);
  v.ffn_dim = optional<int64_t>(params, "vision_ffn", 4 * v.width, source);
  v.patch_size = optional<int64_t>(params, "vision_patch_size", v.patch_size, source);
  v.tile_size = optional<int64_t>(params, "vision_chunk_size", v.tile_size, source);
  v.max_tiles = optional<int64_t>(params, "vision_max_num_chunks", v.max_tiles, source);
  v.intermediate_layers = optional<std::vector<int64_t>>(params, "vision_intermediate_layers", v.intermediate_layers, source);
  v.output_dim = c.dim;
  c.cross_attention_before = meta_fusion_schedule(c.n_layers, n_cross);
  c.extra_embeddings = 8;  // learnable_embedding: max(model-parallel size, 8) rows, 8 in the released files
}

// Hugging Face's MllamaConfig: text_config (a Llama config whose num_hidden_layers counts the
// cross-attention layers too, listed in cross_attention_layers) and vision_config.
ModelConfig config_from_mllama_config(const json& config, std::string_view source) {
  check(config.contains("text_config") && config["text_config"].is_object() && config.contains("vision_config") &&
            config["vision_config"].is_object(),
        "{}: an mllama config needs text_config and vision_config objects", source);
  const json& t = config["text_config"];
  const json& vc = config["vision_config"];
  ModelConfig c = config_from_hf_text_config(t, source, true);
  const auto cross = required<std::vector<int64_t>>(t, "cross_attention_layers", source);
  check(!cross.empty() && std::is_sorted(cross.begin(), cross.end()) && cross.front() >= 0 &&
            cross.back() < c.n_layers && std::adjacent_find(cross.begin(), cross.end()) == cross.end(),
        "{}: cross_attention_layers must be increasing layer indices below num_hidden_layers {}", source, c.n_layers);
  // HF layer x_j (the j-th cross layer) runs before Meta's self-attention layer x_j - j.
  for (size_t j = 0; j < cross.size(); ++j) c.cross_attention_before.push_back(cross[j] - static_cast<int64_t>(j));
  c.n_layers -= static_cast<int64_t>(cross.size());
  vision::VisionConfig& v = c.vision;
  v.width = required<int64_t>(vc, "hidden_size", source);
  v.layers = required<int64_t>(vc, "num_hidden_layers", source);
  v.global_layers = required<int64_t>(vc, "num_global_layers", source);
  v.heads = required<int64_t>(vc, "attention_heads", source);
  v.ffn_dim = required<int64_t>(vc, "intermediate_size", source);
  v.patch_size = required<int64_t>(vc, "patch_size", source);
  v.tile_size = required<int64_t>(vc, "image_size", source);
  v.max_tiles = optional<int64_t>(vc, "max_num_tiles", 4, source);
  v.intermediate_layers = required<std::vector<int64_t>>(vc, "intermediate_layers_indices", source);
  v.norm_eps = optional<double>(vc, "norm_eps", 1e-5, source);
  v.output_dim = c.dim;
  const int64_t out_dim = optional<int64_t>(vc, "vision_output_dim", v.features(), source);
  check(out_dim == v.features(), "{}: vision_output_dim {} is not hidden_size x (1 + intermediate layers) = {}",
        source, out_dim, v.features());
  const int64_t image_token = optional<int64_t>(config, "image_token_index", c.vocab_size, source);
  check(image_token == c.vocab_size, "{}: image_token_index {} is not vocab_size {} (the first extra embedding)",
        source, image_token, c.vocab_size);
  c.extra_embeddings = 8;
  c.validate();
  c.name = identify_preset(c);
  return c;
}


void ModelConfig::validate() const {
  check(dim > 0 && n_layers > 0 && n_heads > 0 && n_kv_heads > 0 && ffn_dim > 0 && vocab_size > 0,
        "model config: dim, n_layers, n_heads, n_kv_heads, ffn_dim and vocab_size must be positive");
  check(dim % n_heads == 0, "model config: dim {} is not a multiple of n_heads {}", dim, n_heads);
  check(head_dim == dim / n_heads, "model config: head_dim {} != dim / n_heads = {}", head_dim,
        dim / n_heads);
  check(head_dim % 2 == 0, "model config: head_dim {} must be even for RoPE", head_dim);
  check(n_heads % n_kv_heads == 0, "model config: n_heads {} is not a multiple of n_kv_heads {}",
        n_heads, n_kv_heads);
  check(norm_eps > 0 && rope_theta > 0, "model config: norm_eps and rope_theta must be positive");
  check(max_seq_len > 0 && max_seq_len <= 131072, "model config: max_seq_len {} not in 1..131072",
        max_seq_len);
  check(rope_freq_divisors.empty() || static_cast<int64_t>(rope_freq_divisors.size()) == head_dim / 2,
        "model config: {} RoPE frequency divisors for head_dim {} (expected {})", rope_freq_divisors.size(), head_dim,
        head_dim / 2);
  for (double d : rope_freq_divisors) check(d > 0 && std::isfinite(d), "model config: RoPE frequency divisor {} must be positive", d);
  for (size_t i = 0; i < cross_attention_before.size(); ++i) {
    check(cross_attention_before[i] >= 0 && cross_attention_before[i] < n_layers &&
              (i == 0 || cross_attention_before[i] > cross_attention_before[i - 1]),
          "model config: cross-attention layers must sit before increasing self-attention layers 0..{}", n_layers - 1);
  }
  check(has_vision() == !cross_attention_before.empty(),
        "model config: a vision encoder needs cross-attention layers and the reverse");
  check(extra_embeddings >= 0 && (!has_vision() || extra_embeddings >= 1),
        "model config: a vision model needs the image token's embedding row");
  if (has_vision()) {
    check(vision.output_dim == dim, "model config: the vision projection's width {} is not the model's {}",
          vision.output_dim, dim);
    vision.validate();
  }
  if (rope_scaling.enabled) {
    check(rope_scaling.factor >= 1.0, "model config: rope scaling factor {} must be >= 1",
          rope_scaling.factor);
    check(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor,
          "model config: rope high_freq_factor must exceed low_freq_factor");
    check(rope_scaling.original_max_position > 0,
          "model config: rope original_max_position_embeddings must be positive");
  }
}

int64_t ModelConfig::parameter_count() const {
  const int64_t kv_dim = n_kv_heads * head_dim;
  const int64_t per_layer = dim * dim * 2 + dim * kv_dim * 2 + 3 * dim * ffn_dim + 2 * dim;
  return vocab_size * dim * (tied_embeddings ? 1 : 2) + n_layers * per_layer + dim;
}

int64_t ModelConfig::weight_bytes_bf16() const { return 2 * parameter_count(); }

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.emplace_back(p.name);
  return names;
}

ModelConfig preset(std::string_view name) {
  for (const auto& p : kPresets) {
    if (name == p.name) return from_spec(p);
  }
  fail("unknown model preset \"{}\"; known: {}", name, fmt::join(preset_names(), ", "));
}

double default_rope_factor_for(const ModelConfig& config) {
  // The 3.2 text models (1B: dim 2048, 3B: dim 3072) were trained with factor 32.
  return (config.dim == 2048 || config.dim == 3072) ? 32.0 : 8.0;
}

std::string identify_preset(const ModelConfig& config) {
  for (const auto& p : kPresets) {
    const ModelConfig c = from_spec(p);
    if (c.dim == config.dim && c.n_heads == config.n_heads && c.n_kv_heads == config.n_kv_heads &&
        c.ffn_dim == config.ffn_dim && c.vocab_size == config.vocab_size &&
        c.n_layers == config.n_layers && c.cross_attention_before == config.cross_attention_before &&
        c.vision.width == config.vision.width) {
      return c.name;
    }
  }
  return "custom";
}

ModelConfig config_from_meta_params(const json& params, std::string_view source) {
  check(params.is_object(), "{}: expected a JSON object", source);
  ModelConfig c;
  c.dim = required<int64_t>(params, "dim", source);
  c.n_layers = required<int64_t>(params, "n_layers", source);
  c.n_heads = required<int64_t>(params, "n_heads", source);
  c.n_kv_heads = optional<int64_t>(params, "n_kv_heads", c.n_heads, source);
  c.vocab_size = required<int64_t>(params, "vocab_size", source);
  check(c.vocab_size > 0, "{}: vocab_size must be positive (got {})", source, c.vocab_size);
  c.norm_eps = optional<double>(params, "norm_eps", 1e-5, source);
  c.rope_theta = optional<double>(params, "rope_theta", 500000.0, source);
  check(c.n_heads > 0 && c.dim % c.n_heads == 0, "{}: dim {} is not a multiple of n_heads {}",
        source, c.dim, c.n_heads);
  c.head_dim = c.dim / c.n_heads;
  const int64_t multiple_of = optional<int64_t>(params, "multiple_of", 256, source);
  check(multiple_of > 0, "{}: multiple_of must be positive", source);
  const double multiplier = optional<double>(params, "ffn_dim_multiplier", 1.0, source);
  c.ffn_dim = llama_ffn_dim(c.dim, multiplier, multiple_of);
  const int64_t n_cross = optional<int64_t>(params, "vision_num_cross_attention_layers", 0, source);
  if (n_cross > 0) meta_vision_config(params, n_cross, c, source);
  // Llama 3.0 has no "use_scaled_rope" and an 8k context.
  c.rope_scaling.enabled = optional<bool>(params, "use_scaled_rope", false, source);
  if (c.rope_scaling.enabled) {
    // params.json rarely states the factor; take it when it does, else from the model's identity.
    if (params.contains("rope_scaling_factor")) {
      c.rope_scaling.factor = required<double>(params, "rope_scaling_factor", source);
    } else if (params.contains("rope_scaling") && params["rope_scaling"].is_object()) {
      c.rope_scaling.factor = required<double>(params["rope_scaling"], "factor", source);
    } else {
      c.rope_scaling.factor = default_rope_factor_for(c);
    }
    c.max_seq_len = 131072;
  } else {
    c.max_seq_len = 8192;
  }
  c.tied_embeddings = false;  // decided by the checkpoint: no output.weight means tied
  c.validate();
  c.name = identify_preset(c);
  return c;
}

ModelConfig config_from_hf_config(const json& config, std::string_view source) {
  return config_from_hf_text_config(config, source, false);
}

ModelConfig config_from_hf_text_config(const json& config, std::string_view source, bool mllama_text) {
  check(config.is_object(), "{}: expected a JSON object", source);
  const std::string model_type = optional<std::string>(config, "model_type", "", source);
  if (model_type == "mllama") return config_from_mllama_config(config, source);
  bool is_llama = model_type == "llama";
  if (config.contains("architectures") && config["architectures"].is_array()) {
    for (const auto& a : config["architectures"]) is_llama |= a == "LlamaForCausalLM";
  }
  check(is_llama || mllama_text, "{}: unsupported architecture (model_type \"{}\"); expected LlamaForCausalLM",
        source, model_type);
  ModelConfig c;
  c.dim = required<int64_t>(config, "hidden_size", source);
  c.n_layers = required<int64_t>(config, "num_hidden_layers", source);
  c.n_heads = required<int64_t>(config, "num_attention_heads", source);
  c.n_kv_heads = optional<int64_t>(config, "num_key_value_heads", c.n_heads, source);
  c.ffn_dim = required<int64_t>(config, "intermediate_size", source);
  c.vocab_size = required<int64_t>(config, "vocab_size", source);
  c.norm_eps = optional<double>(config, "rms_norm_eps", 1e-5, source);
  c.rope_theta = optional<double>(config, "rope_theta", 10000.0, source);
  c.max_seq_len = std::min<int64_t>(optional<int64_t>(config, "max_position_embeddings", 8192, source), 131072);
  c.tied_embeddings = optional<bool>(config, "tie_word_embeddings", false, source);
  check(c.n_heads > 0 && c.dim % c.n_heads == 0, "{}: hidden_size {} is not a multiple of num_attention_heads {}",
        source, c.dim, c.n_heads);
  c.head_dim = c.dim / c.n_heads;
  if (config.contains("head_dim") && !config["head_dim"].is_null()) {
    const auto hd = required<int64_t>(config, "head_dim", source);
    check(hd == c.head_dim, "{}: head_dim {} differs from hidden_size / num_attention_heads = {}",
          source, hd, c.head_dim);
  }
  if (config.contains("rope_scaling") && !config["rope_scaling"].is_null()) {
    const json& rs = config["rope_scaling"];
    check(rs.is_object(), "{}: rope_scaling must be an object or null", source);
    const std::string type = rs.contains("rope_type") ? optional<std::string>(rs, "rope_type", "", source)
                                                      : optional<std::string>(rs, "type", "", source);
    check(type == "llama3", "{}: unsupported rope_scaling type \"{}\" (only \"llama3\")", source, type);
    c.rope_scaling.enabled = true;
    c.rope_scaling.factor = required<double>(rs, "factor", source);
    c.rope_scaling.low_freq_factor = optional<double>(rs, "low_freq_factor", 1.0, source);
    c.rope_scaling.high_freq_factor = optional<double>(rs, "high_freq_factor", 4.0, source);
    c.rope_scaling.original_max_position =
        optional<int64_t>(rs, "original_max_position_embeddings", 8192, source);
  }
  if (!mllama_text) {
    c.validate();
    c.name = identify_preset(c);
  }
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& dir) {
  auto read_json = [](const std::filesystem::path& path) {
    const std::string text = read_file(path, "model config");
    try {
      return json::parse(text);
    } catch (const json::exception& e) {
      fail("{}: invalid JSON: {}", path.string(), e.what());
    }
  };
  if (std::filesystem::exists(dir / "params.json")) {
    return config_from_meta_params(read_json(dir / "params.json"), (dir / "params.json").string());
  }
  if (std::filesystem::exists(dir / "config.json")) {
    return config_from_hf_config(read_json(dir / "config.json"), (dir / "config.json").string());
  }
  fail("{}: neither params.json (Meta) nor config.json (Hugging Face) found", dir.string());
}

void truncate_layers(ModelConfig& config, int64_t n) {
  check(n >= 1 && n <= config.n_layers, "--layers {} is out of range: {} has {} layers", n,
        config.name, config.n_layers);
  config.n_layers = n;
  // The cross-attention layers that run before a kept self-attention layer stay.
  auto& cross = config.cross_attention_before;
  cross.erase(std::remove_if(cross.begin(), cross.end(), [n](int64_t l) { return l >= n; }), cross.end());
  if (cross.empty()) {  // no cross-attention layer left: what remains is a text model
    config.vision = {};
    config.extra_embeddings = 0;
  }
}

}  // namespace llama3::model

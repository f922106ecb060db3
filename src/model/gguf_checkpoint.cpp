#include "model/gguf_checkpoint.h"

#include <fmt/ranges.h>

#include <cmath>
#include <memory>
#include <numbers>

#include "core/error.h"
#include "core/quant_blocks.h"
#include "model/matrix_convert.h"
#include "model/matrix_slice.h"
#include "model/tensor_names.h"

namespace llama3::model {

namespace fs = std::filesystem;

namespace {

const char* gguf_suffix(LayerTensor t) {
  switch (t) {
    case LayerTensor::Wq: return "attn_q";
    case LayerTensor::Wk: return "attn_k";
    case LayerTensor::Wv: return "attn_v";
    case LayerTensor::Wo: return "attn_output";
    case LayerTensor::W1: return "ffn_gate";
    case LayerTensor::W2: return "ffn_down";
    case LayerTensor::W3: return "ffn_up";
    case LayerTensor::AttentionNorm: return "attn_norm";
    case LayerTensor::FfnNorm: return "ffn_norm";
  }
  return "";
}

int64_t positive(const io::GgufFile& f, const char* key) {
  const int64_t v = f.get_int(key);
  check(v > 0, "{}: {} = {} must be positive", f.path().string(), key, v);
  return v;
}

// Finds the Llama 3.1 scaling parameters that reproduce the file's divisors, so that a GGUF and
// the Hugging Face folder it came from compute the same frequencies (llama.cpp's converter
// computes the divisors in float32: compared with a relative tolerance of 1e-5).
std::optional<RopeScaling> identify_rope_scaling(ModelConfig c, const std::vector<double>& divisors) {
  for (double factor : {8.0, 32.0, 16.0, 4.0, 2.0, 64.0}) {
    c.rope_scaling = RopeScaling{true, factor, 1.0, 4.0, 8192};
    const std::vector<double> expected = llama3_rope_divisors(c);
    bool match = expected.size() == divisors.size();
    for (size_t i = 0; match && i < expected.size(); ++i) {
      match = std::abs(expected[i] - divisors[i]) <= 1e-5 * expected[i];
    }
    if (match) return c.rope_scaling;
  }
  return std::nullopt;
}

std::vector<double> read_vector(const io::GgufTensor& t, const std::string& what) {
  check(t.dims.size() == 1, "{}: tensor {} has {} dimensions; expected 1", what, t.name, t.dims.size());
  std::vector<float> v(static_cast<size_t>(t.dims[0]));
  dequantize_row(t.type, t.data, v);
  return {v.begin(), v.end()};
}

}  // namespace

std::string gguf_layer_tensor_name(int64_t layer, LayerTensor t) {
  return fmt::format("blk.{}.{}.weight", layer, gguf_suffix(t));
}

std::vector<double> llama3_rope_divisors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  std::vector<double> out;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const double f = std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim));
    const double wavelen = 2.0 * std::numbers::pi / f;
    const double low_wavelen = static_cast<double>(s.original_max_position) / s.low_freq_factor;
    const double high_wavelen = static_cast<double>(s.original_max_position) / s.high_freq_factor;
    if (!s.enabled || wavelen < high_wavelen) {
      out.push_back(1.0);
    } else if (wavelen > low_wavelen) {
      out.push_back(s.factor);
    } else {
      const double smooth = (static_cast<double>(s.original_max_position) / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      out.push_back(1.0 / ((1.0 - smooth) / s.factor + smooth));
    }
  }
  return out;
}

ModelConfig config_from_gguf(const io::GgufFile& f) {
  const std::string what = f.path().string();
  const std::string_view arch = f.get_string("general.architecture");
  check(arch == "llama", "{}: general.architecture is \"{}\"; this engine runs Llama 3 (\"llama\") models only", what,
        arch);
  ModelConfig c;
  c.dim = positive(f, "llama.embedding_length");
  c.n_layers = positive(f, "llama.block_count");
  c.n_heads = positive(f, "llama.attention.head_count");
  c.n_kv_heads = f.has("llama.attention.head_count_kv") ? positive(f, "llama.attention.head_count_kv") : c.n_heads;
  check(c.n_heads % c.n_kv_heads == 0,
        "{}: llama.attention.head_count_kv {} does not divide llama.attention.head_count {} (each kv head serves "
        "a whole group of query heads)",
        what, c.n_kv_heads, c.n_heads);
  c.ffn_dim = positive(f, "llama.feed_forward_length");
  check(c.dim % c.n_heads == 0, "{}: llama.embedding_length {} is not a multiple of llama.attention.head_count {}",
        what, c.dim, c.n_heads);
  c.head_dim = c.dim / c.n_heads;
  for (const char* key : {"llama.rope.dimension_count", "llama.attention.key_length", "llama.attention.value_length"}) {
    if (f.has(key)) {
      check(f.get_int(key) == c.head_dim, "{}: {} = {}, but the engine needs it equal to the head size {}", what, key,
            f.get_int(key), c.head_dim);
    }
  }
  c.norm_eps = f.get_float("llama.attention.layer_norm_rms_epsilon");
  c.rope_theta = f.find_float("llama.rope.freq_base").value_or(10000.0);
  c.max_seq_len = std::min<int64_t>(f.find_int("llama.context_length").value_or(8192), 131072);
  const io::GgufTensor* embed = f.find(kGgufEmbed);
  check(embed != nullptr, "{}: no tensor {}", what, kGgufEmbed);
  check(embed->dims.size() == 2 && embed->dims[0] == c.dim, "{}: {} has dims [{}]; expected [{}, vocab]", what,
        kGgufEmbed, fmt::join(embed->dims, ", "), c.dim);
  c.vocab_size = f.find_int("llama.vocab_size").value_or(embed->dims[1]);
  check(c.vocab_size == embed->dims[1], "{}: llama.vocab_size {} but {} has {} rows", what, c.vocab_size, kGgufEmbed,
        embed->dims[1]);
  c.tied_embeddings = f.find(kGgufOutput) == nullptr;
  if (const auto type = f.find_string("llama.rope.scaling.type")) {
    check(*type == "none" || *type == "llama3",
          "{}: llama.rope.scaling.type \"{}\" is not Llama 3's (none, or llama3 via rope_freqs.weight)", what, *type);
  }
  c.rope_scaling.enabled = false;
  if (f.find_string("llama.rope.scaling.type") == "llama3") {  // parameters as keys, not as a tensor
    c.rope_scaling = RopeScaling{true, f.get_float("llama.rope.scaling.factor"),
                                 f.find_float("llama.rope.scaling.low_freq_factor").value_or(1.0),
                                 f.find_float("llama.rope.scaling.high_freq_factor").value_or(4.0),
                                 f.find_int("llama.rope.scaling.original_context_length").value_or(8192)};
  }
  if (const io::GgufTensor* freqs = f.find(kGgufRopeFreqs)) {
    const std::vector<double> divisors = read_vector(*freqs, what);
    check(static_cast<int64_t>(divisors.size()) == c.head_dim / 2, "{}: {} has {} values; expected head_size/2 = {}",
          what, kGgufRopeFreqs, divisors.size(), c.head_dim / 2);
    if (const auto scaling = identify_rope_scaling(c, divisors)) {
      c.rope_scaling = *scaling;
    } else {
      c.rope_freq_divisors = divisors;
    }
  }
  c.name = identify_preset(c);
  c.validate();
  return c;
}

LoadedCheckpoint load_gguf_checkpoint(const fs::path& path, std::optional<int64_t> layers,
                                      const PrecisionMap& precision, Share share) {
  auto file = std::make_shared<io::GgufFile>(path);
  const std::string what = path.string();
  LoadedCheckpoint out{config_from_gguf(*file), {}, CheckpointFormat::Gguf};
  ModelConfig& c = out.config;
  if (layers) truncate_layers(c, *layers);
  ModelWeights& w = out.weights;
  w.keep_alive.push_back(file);
  w.shard = shard_plan(c, share);
  const ShardPlan& s = w.shard;

  auto tensor = [&](const std::string& name) -> const io::GgufTensor& {
    const io::GgufTensor* t = file->find(name);
    check(t != nullptr, "{}: no tensor {}", what, name);
    return *t;
  };
  // GGUF dims are [cols, rows] (ggml's innermost first).
  // Rows `rs` and columns `cs` of the tensor (this rank's share of it).
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, MatrixPrecision p, Slice rs, Slice cs) {
    const io::GgufTensor& t = tensor(name);
    check(t.dims.size() == 2 && t.dims[0] == cols && t.dims[1] == rows,
          "{}: tensor {} has dims [{}]; expected [{}, {}] (ggml order)", what, name, fmt::join(t.dims, ", "), cols, rows);
    return convert_window({name, t.type, t.data.data(), rows, cols}, rs, cs, p, w);
  };
  auto vector = [&](const std::string& name, int64_t n) {
    const io::GgufTensor& t = tensor(name);
    check(t.dims.size() == 1 && t.dims[0] == n, "{}: tensor {} has dims [{}]; expected [{}]", what, name,
          fmt::join(t.dims, ", "), n);
    std::vector<float> v(static_cast<size_t>(n));
    dequantize_row(t.type, t.data, v);
    return v;
  };

  const int64_t q_dim = c.n_heads * c.head_dim;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  const Slice all_dim{0, c.dim};
  if (c.tied_embeddings) {
    w.tok_embeddings = w.output = matrix(kGgufEmbed, c.vocab_size, c.dim, precision.lm_head, s.vocab, all_dim);
  } else {
    w.tok_embeddings = matrix(kGgufEmbed, c.vocab_size, c.dim, embedding_precision(), s.vocab, all_dim);
    w.output = matrix(kGgufOutput, c.vocab_size, c.dim, precision.lm_head, s.vocab, all_dim);
  }
  w.norm = vector(kGgufNorm, c.dim);
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    auto name = [&](LayerTensor t) { return gguf_layer_tensor_name(l, t); };
    L.wq = matrix(name(LayerTensor::Wq), q_dim, c.dim, precision.wqkv, s.q_rows, all_dim);
    L.wk = matrix(name(LayerTensor::Wk), kv_dim, c.dim, precision.wqkv, s.kv_rows, all_dim);
    L.wv = matrix(name(LayerTensor::Wv), kv_dim, c.dim, precision.wqkv, s.kv_rows, all_dim);
    L.wo = matrix(name(LayerTensor::Wo), c.dim, q_dim, precision.wo, all_dim, s.q_rows);
    L.w1 = matrix(name(LayerTensor::W1), c.ffn_dim, c.dim, precision.ff1_3, s.ffn, all_dim);
    L.w3 = matrix(name(LayerTensor::W3), c.ffn_dim, c.dim, precision.ff1_3, s.ffn, all_dim);
    L.w2 = matrix(name(LayerTensor::W2), c.dim, c.ffn_dim, precision.ff2, all_dim, s.ffn);
    L.attention_norm = vector(name(LayerTensor::AttentionNorm), c.dim);
    L.ffn_norm = vector(name(LayerTensor::FfnNorm), c.dim);
  }
  return out;
}

}  // namespace llama3::model

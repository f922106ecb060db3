#include "model/checkpoint_writer.h"

#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors_writer.h"
#include "model/checkpoint_loader.h"
#include "model/tensor_names.h"

namespace llama3::model {

namespace fs = std::filesystem;

namespace {

io::TensorToWrite matrix_tensor(const std::string& name, const Matrix& m) {
  check(m.format == kernels::WeightFormat::BF16, "{}: writing a checkpoint needs bf16 weights (load with --optimizations bf16)",
        name);
  return {name, DType::BF16, {m.rows, m.cols}, std::span(m.data, m.bytes())};
}

io::TensorToWrite vector_tensor(const std::string& name, const std::vector<float>& v) {
  return {name, DType::F32, {static_cast<int64_t>(v.size())}, std::as_bytes(std::span(v))};
}

void write_json(const fs::path& path, const nlohmann::json& j) {
  std::ofstream out(path);
  check(static_cast<bool>(out), "cannot write {}", path.string());
  out << j.dump(2) << "\n";
}

// Hugging Face's q/k row order (see hf_row_of_meta_row), copied into `storage`.
Matrix to_hf_rows(const Matrix& m, int64_t head_dim, std::vector<uint16_t>& storage) {
  storage.resize(static_cast<size_t>(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    std::copy_n(m.bf16() + r * m.cols, m.cols, storage.data() + hf_row_of_meta_row(r, head_dim) * m.cols);
  }
  return {kernels::WeightFormat::BF16, reinterpret_cast<const std::byte*>(storage.data()), m.rows, m.cols};
}

// All tensors of `w` under `names`; q/k rows permuted to Hugging Face's order for HF names
// (the permuted copies are kept in `permuted`).
std::vector<io::TensorToWrite> tensors_to_write(const ModelConfig& c, const ModelWeights& w, const TensorNames& names,
                                                std::vector<std::vector<uint16_t>>& permuted) {
  std::vector<io::TensorToWrite> t;
  t.push_back(matrix_tensor(names.embed, w.tok_embeddings));
  if (!w.tied()) t.push_back(matrix_tensor(names.output, w.output));  // untied
  t.push_back(vector_tensor(names.norm, w.norm));
  const bool hf = names.style == NameStyle::HuggingFace;
  permuted.resize(hf ? 2 * w.layers.size() : 0);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    for (LayerTensor which : kLayerTensors) {
      const std::string name = names.layer(static_cast<int64_t>(l), which);
      if (is_norm(which)) {
        t.push_back(vector_tensor(name, layer_norm(w.layers[l], which)));
      } else if (hf && (which == LayerTensor::Wq || which == LayerTensor::Wk)) {
        auto& storage = permuted[2 * l + (which == LayerTensor::Wk ? 1 : 0)];
        t.push_back(matrix_tensor(name, to_hf_rows(layer_matrix(w.layers[l], which), c.head_dim, storage)));
      } else {
        t.push_back(matrix_tensor(name, layer_matrix(w.layers[l], which)));
      }
    }
  }
  return t;
}

}  // namespace

void write_meta_safetensors(const ModelConfig& config, const ModelWeights& w, const fs::path& dir,
                            const std::map<std::string, std::string>& metadata) {
  std::vector<std::vector<uint16_t>> unused;
  const auto t = tensors_to_write(config, w, tensor_names(NameStyle::Meta), unused);
  fs::create_directories(dir);
  io::write_safetensors(dir / "consolidated.safetensors", t, metadata);
}

void write_hf_folder(const ModelConfig& c, const ModelWeights& w, const fs::path& dir) {
  std::vector<std::vector<uint16_t>> permuted;
  const auto t = tensors_to_write(c, w, tensor_names(NameStyle::HuggingFace), permuted);
  const bool tied = w.tied();
  fs::create_directories(dir);
  io::write_safetensors(dir / "model.safetensors", t, {{"format", "pt"}});
  nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}},
                           {"model_type", "llama"},
                           {"hidden_size", c.dim},
                           {"intermediate_size", c.ffn_dim},
                           {"num_hidden_layers", c.n_layers},
                           {"num_attention_heads", c.n_heads},
                           {"num_key_value_heads", c.n_kv_heads},
                           {"vocab_size", c.vocab_size},
                           {"rms_norm_eps", c.norm_eps},
                           {"rope_theta", c.rope_theta},
                           {"max_position_embeddings", c.max_seq_len},
                           {"tie_word_embeddings", tied},
                           {"torch_dtype", "bfloat16"},
                           {"bos_token_id", 128000},
                           {"eos_token_id", {128001, 128008, 128009}}};
  if (c.rope_scaling.enabled) {
    config["rope_scaling"] = {{"rope_type", "llama3"},
                              {"factor", c.rope_scaling.factor},
                              {"low_freq_factor", c.rope_scaling.low_freq_factor},
                              {"high_freq_factor", c.rope_scaling.high_freq_factor},
                              {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
  } else {
    config["rope_scaling"] = nullptr;
  }
  write_json(dir / "config.json", config);
}

}  // namespace llama3::model

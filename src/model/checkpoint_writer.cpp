#include "model/checkpoint_writer.h"

#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors_writer.h"
#include "model/checkpoint_loader.h"

namespace llama3::model {

namespace fs = std::filesystem;

namespace {

io::TensorToWrite matrix_tensor(const std::string& name, const Matrix& m) {
  return {name, DType::BF16, {m.rows, m.cols}, std::as_bytes(std::span(m.data, static_cast<size_t>(m.rows * m.cols)))};
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
    std::copy_n(m.data + r * m.cols, m.cols, storage.data() + hf_row_of_meta_row(r, head_dim) * m.cols);
  }
  return {storage.data(), m.rows, m.cols};
}

}  // namespace

void write_meta_safetensors(const ModelWeights& w, const fs::path& dir,
                            const std::map<std::string, std::string>& metadata) {
  std::vector<io::TensorToWrite> t;
  t.push_back(matrix_tensor("tok_embeddings.weight", w.tok_embeddings));
  if (w.output.data != w.tok_embeddings.data) t.push_back(matrix_tensor("output.weight", w.output));
  t.push_back(vector_tensor("norm.weight", w.norm));
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const auto& L = w.layers[l];
    const std::string p = fmt::format("layers.{}.", l);
    t.push_back(matrix_tensor(p + "attention.wq.weight", L.wq));
    t.push_back(matrix_tensor(p + "attention.wk.weight", L.wk));
    t.push_back(matrix_tensor(p + "attention.wv.weight", L.wv));
    t.push_back(matrix_tensor(p + "attention.wo.weight", L.wo));
    t.push_back(matrix_tensor(p + "feed_forward.w1.weight", L.w1));
    t.push_back(matrix_tensor(p + "feed_forward.w2.weight", L.w2));
    t.push_back(matrix_tensor(p + "feed_forward.w3.weight", L.w3));
    t.push_back(vector_tensor(p + "attention_norm.weight", L.attention_norm));
    t.push_back(vector_tensor(p + "ffn_norm.weight", L.ffn_norm));
  }
  fs::create_directories(dir);
  io::write_safetensors(dir / "consolidated.safetensors", t, metadata);
}

void write_hf_folder(const ModelConfig& c, const ModelWeights& w, const fs::path& dir) {
  std::vector<io::TensorToWrite> t;
  const bool tied = w.output.data == w.tok_embeddings.data;
  t.push_back(matrix_tensor("model.embed_tokens.weight", w.tok_embeddings));
  if (!tied) t.push_back(matrix_tensor("lm_head.weight", w.output));
  t.push_back(vector_tensor("model.norm.weight", w.norm));
  std::vector<std::vector<uint16_t>> permuted(2 * w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const auto& L = w.layers[l];
    const std::string p = fmt::format("model.layers.{}.", l);
    t.push_back(matrix_tensor(p + "self_attn.q_proj.weight", to_hf_rows(L.wq, c.head_dim, permuted[2 * l])));
    t.push_back(matrix_tensor(p + "self_attn.k_proj.weight", to_hf_rows(L.wk, c.head_dim, permuted[2 * l + 1])));
    t.push_back(matrix_tensor(p + "self_attn.v_proj.weight", L.wv));
    t.push_back(matrix_tensor(p + "self_attn.o_proj.weight", L.wo));
    t.push_back(matrix_tensor(p + "mlp.gate_proj.weight", L.w1));
    t.push_back(matrix_tensor(p + "mlp.down_proj.weight", L.w2));
    t.push_back(matrix_tensor(p + "mlp.up_proj.weight", L.w3));
    t.push_back(vector_tensor(p + "input_layernorm.weight", L.attention_norm));
    t.push_back(vector_tensor(p + "post_attention_layernorm.weight", L.ffn_norm));
  }
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

#include "model/tensor_names.h"

#include <fmt/core.h>

namespace llama3::model {

namespace {

const char* meta_suffix(LayerTensor t) {
  switch (t) {
    case LayerTensor::Wq: return "attention.wq";
    case LayerTensor::Wk: return "attention.wk";
    case LayerTensor::Wv: return "attention.wv";
    case LayerTensor::Wo: return "attention.wo";
    case LayerTensor::W1: return "feed_forward.w1";
    case LayerTensor::W2: return "feed_forward.w2";
    case LayerTensor::W3: return "feed_forward.w3";
    case LayerTensor::AttentionNorm: return "attention_norm";
    case LayerTensor::FfnNorm: return "ffn_norm";
  }
  return "";
}

// Hugging Face: gate = w1, up = w3, down = w2.
const char* hf_suffix(LayerTensor t) {
  switch (t) {
    case LayerTensor::Wq: return "self_attn.q_proj";
    case LayerTensor::Wk: return "self_attn.k_proj";
    case LayerTensor::Wv: return "self_attn.v_proj";
    case LayerTensor::Wo: return "self_attn.o_proj";
    case LayerTensor::W1: return "mlp.gate_proj";
    case LayerTensor::W2: return "mlp.down_proj";
    case LayerTensor::W3: return "mlp.up_proj";
    case LayerTensor::AttentionNorm: return "input_layernorm";
    case LayerTensor::FfnNorm: return "post_attention_layernorm";
  }
  return "";
}

}  // namespace

std::string TensorNames::layer(int64_t l, LayerTensor t) const {
  return style == NameStyle::Meta ? fmt::format("layers.{}.{}.weight", l, meta_suffix(t))
                                  : fmt::format("model.layers.{}.{}.weight", l, hf_suffix(t));
}

const TensorNames& tensor_names(NameStyle style) {
  static const TensorNames meta{NameStyle::Meta, "tok_embeddings.weight", "output.weight", "norm.weight"};
  static const TensorNames hf{NameStyle::HuggingFace, "model.embed_tokens.weight", "lm_head.weight",
                              "model.norm.weight"};
  return style == NameStyle::Meta ? meta : hf;
}

const Matrix& layer_matrix(const LayerWeights& L, LayerTensor t) {
  switch (t) {
    case LayerTensor::Wq: return L.wq;
    case LayerTensor::Wk: return L.wk;
    case LayerTensor::Wv: return L.wv;
    case LayerTensor::Wo: return L.wo;
    case LayerTensor::W1: return L.w1;
    case LayerTensor::W2: return L.w2;
    default: return L.w3;
  }
}

const std::vector<float>& layer_norm(const LayerWeights& L, LayerTensor t) {
  return t == LayerTensor::AttentionNorm ? L.attention_norm : L.ffn_norm;
}

}  // namespace llama3::model

#include "model/vision_checkpoint.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <string_view>

#include "core/error.h"
#include "vision/image_preprocess.h"

namespace llama3::model {
namespace {

// Hugging Face numbers the layers of both kinds together: cross layer j, placed before self
// layer cross_before[j], is layer cross_before[j] + j; self layer l is l plus the cross layers
// at or before it.
int64_t hf_self_layer(int64_t l, const std::vector<int64_t>& cross_before) {
  return l + std::count_if(cross_before.begin(), cross_before.end(), [l](int64_t c) { return c <= l; });
}

// Whether transformers' convert_mllama_weights_to_hf.py permutes the cross-attention q/k rows
// for RoPE as it does the self-attention ones. It does not: cross-attention has no RoPE, and the
// q_norm/k_norm weights (per head dimension) are copied unchanged, which only an unpermuted
// q/k keeps equivalent to Meta's.
constexpr bool kHfPermutesCrossQk = false;

}  // namespace

PartFinder multimodal_text_finder(PartFinder raw, NameStyle style, std::vector<int64_t> cross_before) {
  if (style == NameStyle::Meta) {
    return [raw](const std::string& name) { return raw("text_model." + name); };
  }
  return [raw, cross_before](const std::string& name) {
    constexpr std::string_view layers = "model.layers.";
    if (name.rfind(layers, 0) == 0) {
      const size_t dot = name.find('.', layers.size());
      const int64_t l = std::stoll(name.substr(layers.size(), dot - layers.size()));
      return raw(fmt::format("language_model.model.layers.{}{}", hf_self_layer(l, cross_before), name.substr(dot)));
    }
    if (name == "lm_head.weight") return raw("language_model.lm_head.weight");
    return raw("language_model." + name);  // model.embed_tokens.weight, model.norm.weight
  };
}

namespace {

vision::Bf16Matrix bf16_matrix(WeightBuilder& b, const std::string& name, int64_t rows, int64_t cols) {
  const io::TensorInfo& t = *b.finder()(name).front();
  check_float_tensor(t);
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  check(n == rows * cols && !t.shape.empty() && t.shape[0] == rows,
        "tensor {} has {} values in {} rows; expected [{}][{}]", name, n, t.shape.empty() ? 0 : t.shape[0], rows, cols);
  vision::Bf16Matrix m{std::vector<uint16_t>(static_cast<size_t>(n)), rows, cols};
  for (int64_t i = 0; i < n; ++i) m.values[static_cast<size_t>(i)] = tensor_element_bf16(t, i);
  return m;
}

float scalar(WeightBuilder& b, const std::string& name) { return b.floats(name, {1})[0]; }

void load_cross_layers(const ModelConfig& c, ModelWeights& w, WeightBuilder& b, NameStyle style,
                       const PrecisionMap& p) {
  const int64_t q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  const Slice all_dim{0, c.dim}, q_all{0, q_dim}, kv_all{0, kv_dim}, ffn_all{0, c.ffn_dim};
  const bool hf = style == NameStyle::HuggingFace;
  for (size_t j = 0; j < c.cross_attention_before.size(); ++j) {
    const std::string prefix = hf ? fmt::format("language_model.model.layers.{}.", c.cross_attention_before[j] + static_cast<int64_t>(j))
                                  : fmt::format("text_model.cross_attention_layers.{}.", j);
    auto name = [&](const char* meta, const char* hf_name) { return prefix + (hf ? hf_name : meta); };
    const int64_t q_perm = hf && kHfPermutesCrossQk ? c.n_heads : 0, k_perm = hf && kHfPermutesCrossQk ? c.n_kv_heads : 0;
    CrossLayerWeights x;
    x.wq = b.matrix(name("attention.wq.weight", "cross_attn.q_proj.weight"), q_dim, c.dim, 0, p.wqkv, q_perm, q_all, all_dim);
    x.wk = b.matrix(name("attention.wk.weight", "cross_attn.k_proj.weight"), kv_dim, c.dim, 0, p.wqkv, k_perm, kv_all, all_dim);
    x.wv = b.matrix(name("attention.wv.weight", "cross_attn.v_proj.weight"), kv_dim, c.dim, 0, p.wqkv, 0, kv_all, all_dim);
    x.wo = b.matrix(name("attention.wo.weight", "cross_attn.o_proj.weight"), c.dim, q_dim, 1, p.wo, 0, all_dim, q_all);
    x.w1 = b.matrix(name("feed_forward.w1.weight", "mlp.gate_proj.weight"), c.ffn_dim, c.dim, 0, p.ff1_3, 0, ffn_all, all_dim);
    x.w3 = b.matrix(name("feed_forward.w3.weight", "mlp.up_proj.weight"), c.ffn_dim, c.dim, 0, p.ff1_3, 0, ffn_all, all_dim);
    x.w2 = b.matrix(name("feed_forward.w2.weight", "mlp.down_proj.weight"), c.dim, c.ffn_dim, 1, p.ff2, 0, all_dim, ffn_all);
    x.attention_norm = b.vector(name("attention_norm.weight", "input_layernorm.weight"), c.dim);
    x.ffn_norm = b.vector(name("ffn_norm.weight", "post_attention_layernorm.weight"), c.dim);
    x.q_norm = b.vector(name("attention.q_norm.weight", "cross_attn.q_norm.weight"), c.head_dim);
    x.k_norm = b.vector(name("attention.k_norm.weight", "cross_attn.k_norm.weight"), c.head_dim);
    x.gate_attn = scalar(b, name("gate_attn", "cross_attn_attn_gate"));
    x.gate_ffn = scalar(b, name("gate_ffwd", "cross_attn_mlp_gate"));
    w.cross_layers.push_back(std::move(x));
  }
}

// Meta's [max_tiles][max_tiles][rows][width] grid: canvas (h, w) takes cell (i, j) for its tile
// i * w + j (Meta's aspect ratio is (tiles_h, tiles_w) and its tiles are row-major), zero for
// the empty tiles.
std::vector<vision::CanvasEmbedding> from_meta_grid(const std::vector<float>& grid, int64_t max_tiles, int64_t rows,
                                                    int64_t width) {
  std::vector<vision::CanvasEmbedding> out;
  const int64_t cell = rows * width;
  for (const auto& [th, tw] : vision::supported_canvases(max_tiles)) {
    vision::CanvasEmbedding e{th, tw, std::vector<float>(static_cast<size_t>(max_tiles * cell), 0.0f)};
    for (int64_t t = 0; t < th * tw; ++t) {
      std::copy_n(grid.begin() + ((t / tw) * max_tiles + t % tw) * cell, cell, e.values.begin() + t * cell);
    }
    out.push_back(std::move(e));
  }
  return out;
}

// Hugging Face's [aspect ratio ids + 1][max_tiles * rows * width]: canvas k of supported_canvases()
// (the order of get_all_supported_aspect_ratios) is id k + 1; id 0 pads.
std::vector<vision::CanvasEmbedding> from_hf_ids(const std::vector<float>& table, int64_t max_tiles, int64_t rows,
                                                 int64_t width) {
  std::vector<vision::CanvasEmbedding> out;
  const int64_t row = max_tiles * rows * width;
  const auto canvases = vision::supported_canvases(max_tiles);
  for (size_t k = 0; k < canvases.size(); ++k) {
    const auto begin = table.begin() + static_cast<int64_t>(k + 1) * row;
    out.push_back({canvases[k].first, canvases[k].second, std::vector<float>(begin, begin + row)});
  }
  return out;
}

void load_encoder(const ModelConfig& c, ModelWeights& w, WeightBuilder& b, NameStyle style) {
  const vision::VisionConfig& v = c.vision;
  vision::VisionWeights& out = w.vision;
  const int64_t d = v.width, n = v.tokens_per_tile(), T = v.max_tiles, ps = v.patch_size;
  const int64_t ids = static_cast<int64_t>(vision::supported_canvases(T).size()) + 1;
  const bool hf = style == NameStyle::HuggingFace;
  const std::string e = hf ? "vision_model." : "vision_model.vision_encoder.";
  auto norm = [&](const std::string& name) {
    return vision::LayerNormWeights{b.vector(name + ".weight", d), b.vector(name + ".bias", d)};
  };
  if (hf) {
    out.patch_embedding = bf16_matrix(b, e + "patch_embedding.weight", d, 3 * ps * ps);  // Conv2d [d][3][p][p]
    out.positional = b.floats(e + "gated_positional_embedding.embedding", {n, d});
    out.tile_positional = from_hf_ids(b.floats(e + "gated_positional_embedding.tile_embedding.weight", {ids, T * n * d}), T, n, d);
    out.tile_positional_gate = scalar(b, e + "gated_positional_embedding.gate");
    out.pre_tile = from_hf_ids(b.floats(e + "pre_tile_positional_embedding.embedding.weight", {ids, T * d}), T, 1, d);
    out.pre_tile_gate = scalar(b, e + "pre_tile_positional_embedding.gate");
    out.post_tile = from_hf_ids(b.floats(e + "post_tile_positional_embedding.embedding.weight", {ids, T * d}), T, 1, d);
    out.post_tile_gate = scalar(b, e + "post_tile_positional_embedding.gate");
    out.ln_pre = norm(e + "layernorm_pre");
    out.ln_post = norm(e + "layernorm_post");
  } else {
    out.patch_embedding = bf16_matrix(b, e + "conv1._linear.weight", d, 3 * ps * ps);
    out.positional = b.floats(e + "positional_embedding", {n, d});
    out.tile_positional = from_meta_grid(b.floats(e + "gated_positional_embedding", {T, T, n, d}), T, n, d);
    out.tile_positional_gate = scalar(b, e + "gated_positional_embedding_gate");
    out.pre_tile = from_meta_grid(b.floats(e + "pre_tile_pos_embed.embedding", {T, T, 1, d}), T, 1, d);
    out.pre_tile_gate = scalar(b, e + "pre_tile_pos_embed.gate");
    out.post_tile = from_meta_grid(b.floats(e + "post_tile_pos_embed.embedding", {T, T, 1, d}), T, 1, d);
    out.post_tile_gate = scalar(b, e + "post_tile_pos_embed.gate");
    out.ln_pre = norm(e + "ln_pre");
    out.ln_post = norm(e + "ln_post");
  }
  out.class_embedding = b.floats(e + "class_embedding", {d});
  auto layer = [&](const std::string& stack, int64_t i, bool gated) {
    const std::string p = hf ? fmt::format("{}{}.layers.{}.", e, stack, i) : fmt::format("{}{}.resblocks.{}.", e, stack, i);
    vision::VisionLayerWeights l;
    l.ln_1 = norm(p + (hf ? "input_layernorm" : "ln_1"));
    l.ln_2 = norm(p + (hf ? "post_attention_layernorm" : "ln_2"));
    l.wq = bf16_matrix(b, p + (hf ? "self_attn.q_proj.weight" : "attn.wq.weight"), d, d);
    l.wk = bf16_matrix(b, p + (hf ? "self_attn.k_proj.weight" : "attn.wk.weight"), d, d);
    l.wv = bf16_matrix(b, p + (hf ? "self_attn.v_proj.weight" : "attn.wv.weight"), d, d);
    l.wo = bf16_matrix(b, p + (hf ? "self_attn.o_proj.weight" : "attn.wo.weight"), d, d);
    l.fc1 = bf16_matrix(b, p + (hf ? "mlp.fc1.weight" : "mlp.c_fc.weight"), v.ffn_dim, d);
    l.fc1_bias = b.vector(p + (hf ? "mlp.fc1.bias" : "mlp.c_fc.bias"), v.ffn_dim);
    l.fc2 = bf16_matrix(b, p + (hf ? "mlp.fc2.weight" : "mlp.c_proj.weight"), d, v.ffn_dim);
    l.fc2_bias = b.vector(p + (hf ? "mlp.fc2.bias" : "mlp.c_proj.bias"), d);
    l.gated = gated;
    if (gated) l.gate_attn = scalar(b, p + "gate_attn"), l.gate_ffn = scalar(b, p + "gate_ffn");
    return l;
  };
  for (int64_t i = 0; i < v.layers; ++i) out.layers.push_back(layer("transformer", i, false));
  for (int64_t i = 0; i < v.global_layers; ++i) out.global_layers.push_back(layer("global_transformer", i, true));
  const std::string proj = hf ? "multi_modal_projector" : "vision_model.vision_projection";
  out.projection = bf16_matrix(b, proj + ".weight", c.dim, v.features());
  out.projection_bias = b.vector(proj + ".bias", c.dim);
  out.validate(v);
}

}  // namespace

void load_vision_parts(const ModelConfig& c, ModelWeights& w, WeightBuilder& b, NameStyle style,
                       const PrecisionMap& p) {
  const bool hf = style == NameStyle::HuggingFace;
  // The image token's row (and the other reserved ones): Meta's learnable_embedding, Hugging
  // Face's embed_tokens rows from vocab_size on.
  if (hf) {
    const std::string name = "language_model.model.embed_tokens.weight";
    const io::TensorInfo& t = *b.finder()(name).front();
    check_float_tensor(t);
    check(t.shape == std::vector<int64_t>{c.embedding_rows(), c.dim}, "tensor {} is not [{}, {}]", name,
          c.embedding_rows(), c.dim);
    w.extra_embeddings.resize(static_cast<size_t>(c.extra_embeddings * c.dim));
    for (int64_t i = 0; i < c.extra_embeddings * c.dim; ++i) {
      w.extra_embeddings[static_cast<size_t>(i)] = tensor_element(t, c.vocab_size * c.dim + i);
    }
  } else {
    w.extra_embeddings = b.floats("text_model.learnable_embedding.weight", {c.extra_embeddings, c.dim});
  }
  load_cross_layers(c, w, b, style, p);
  load_encoder(c, w, b, style);
  if (quantized_vision_encoder(p)) vision::quantize_vision_matrices(w.vision);
}

}  // namespace llama3::model

#include "model/random_weights.h"

#include <cmath>

#include "core/dtype.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/splitmix.h"
#include "model/matrix_convert.h"

namespace llama3::model {
namespace {

// Rows `rows` and columns `cols` of a [full_rows][full_cols] random matrix: element (r, c) is
// splitmix64 of its index in the whole matrix, so a slice holds exactly the whole's values
// whichever thread fills it.
Matrix random_matrix(ModelWeights& w, int64_t full_rows, int64_t full_cols, Slice rows, Slice cols, double stddev,
                     uint64_t stream, MatrixPrecision precision) {
  check(rows.begin >= 0 && rows.end() <= full_rows && cols.begin >= 0 && cols.end() <= full_cols,
        "random weights: slice outside a [{}][{}] matrix", full_rows, full_cols);
  AlignedBuffer scratch(static_cast<size_t>(rows.size * cols.size) * 2);
  uint16_t* data = reinterpret_cast<uint16_t*>(scratch.data());
  const float half_width = static_cast<float>(stddev * std::sqrt(3.0));  // uniform [-a, a]: std a/sqrt(3)
  const uint64_t base = splitmix64(stream);
  parallel_for(static_cast<size_t>(rows.size), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const uint64_t row_index = (rows.begin + static_cast<int64_t>(r)) * static_cast<uint64_t>(full_cols);
      for (int64_t c = 0; c < cols.size; ++c) {
        const uint64_t bits = splitmix64(base ^ (row_index + static_cast<uint64_t>(cols.begin + c)));
        const float u = static_cast<float>(bits >> 40) * 0x1p-24f;  // [0, 1)
        data[r * cols.size + c] = f32_to_bf16((2.0f * u - 1.0f) * half_width);
      }
    }
  });
  const SourceMatrix src{"random", GgmlType::BF16, scratch.data(), rows.size, cols.size};
  return convert_scratch(std::move(scratch), src, precision, w);
}

}  // namespace

ModelWeights random_weights(const ModelConfig& c, uint64_t seed, const PrecisionMap& p) {
  return random_weights(c, seed, p, shard_plan(c, 0, 1));
}

ModelWeights random_weights(const ModelConfig& c, uint64_t seed, const PrecisionMap& p, const ShardPlan& shard) {
  ModelWeights w;
  w.shard = shard;
  const int64_t q_dim = c.n_heads * c.head_dim;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  const Slice all_dim{0, c.dim};
  uint64_t stream = splitmix64(seed);
  auto next = [&] { return stream = splitmix64(stream); };
  constexpr double kEmbeddingStd = 0.02;
  constexpr float kFinalNormWeight = 5.0f;
  // Tied: one matrix in the LM head's format; untied: the embedding stays bf16 (precision.h).
  w.tok_embeddings = random_matrix(w, c.vocab_size, c.dim, shard.vocab, all_dim, kEmbeddingStd, next(),
                                   c.tied_embeddings ? p.lm_head : embedding_precision());
  w.output = c.tied_embeddings
                 ? w.tok_embeddings
                 : random_matrix(w, c.vocab_size, c.dim, shard.vocab, all_dim, kEmbeddingStd, next(), p.lm_head);
  auto inv_sqrt = [](int64_t n) { return 1.0 / std::sqrt(static_cast<double>(n)); };
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (auto& layer : w.layers) {
    layer.wq = random_matrix(w, q_dim, c.dim, shard.q_rows, all_dim, inv_sqrt(c.dim), next(), p.wqkv);
    layer.wk = random_matrix(w, kv_dim, c.dim, shard.kv_rows, all_dim, inv_sqrt(c.dim), next(), p.wqkv);
    layer.wv = random_matrix(w, kv_dim, c.dim, shard.kv_rows, all_dim, inv_sqrt(c.dim), next(), p.wqkv);
    layer.wo = random_matrix(w, c.dim, q_dim, all_dim, shard.q_rows, inv_sqrt(q_dim), next(), p.wo);
    layer.w1 = random_matrix(w, c.ffn_dim, c.dim, shard.ffn, all_dim, inv_sqrt(c.dim), next(), p.ff1_3);
    layer.w3 = random_matrix(w, c.ffn_dim, c.dim, shard.ffn, all_dim, inv_sqrt(c.dim), next(), p.ff1_3);
    layer.w2 = random_matrix(w, c.dim, c.ffn_dim, all_dim, shard.ffn, inv_sqrt(c.ffn_dim), next(), p.ff2);
    layer.attention_norm.assign(static_cast<size_t>(c.dim), 1.0f);
    layer.ffn_norm.assign(static_cast<size_t>(c.dim), 1.0f);
  }
  w.norm.assign(static_cast<size_t>(c.dim), kFinalNormWeight);
  if (c.has_vision()) {
    check(shard.ranks == 1, "vision models run on one rank (a mesh of {} was asked for)", shard.ranks);
    auto to_floats = [](const Matrix& m) {
      std::vector<float> v(static_cast<size_t>(m.rows * m.cols));
      for (int64_t r = 0; r < m.rows; ++r) matrix_row_f32(m, r, v.data() + r * m.cols);
      return v;
    };
    // The extra rows (the image token's) as the vocabulary's; each a function of the seed.
    ModelWeights scratch;
    w.extra_embeddings = to_floats(random_matrix(scratch, c.extra_embeddings, c.dim, {0, c.extra_embeddings}, all_dim,
                                                 kEmbeddingStd, next(), embedding_precision()));
    auto gate = [&] {  // uniform in [-1, 1]: a released model's gates are far from 0
      const uint64_t bits = splitmix64(next());
      return static_cast<float>(bits >> 40) * 0x1p-23f - 1.0f;
    };
    for (size_t i = 0; i < c.cross_attention_before.size(); ++i) {
      CrossLayerWeights x;
      x.wq = random_matrix(w, q_dim, c.dim, {0, q_dim}, all_dim, inv_sqrt(c.dim), next(), p.wqkv);
      x.wk = random_matrix(w, kv_dim, c.dim, {0, kv_dim}, all_dim, inv_sqrt(c.dim), next(), p.wqkv);
      x.wv = random_matrix(w, kv_dim, c.dim, {0, kv_dim}, all_dim, inv_sqrt(c.dim), next(), p.wqkv);
      x.wo = random_matrix(w, c.dim, q_dim, all_dim, {0, q_dim}, inv_sqrt(q_dim), next(), p.wo);
      x.w1 = random_matrix(w, c.ffn_dim, c.dim, {0, c.ffn_dim}, all_dim, inv_sqrt(c.dim), next(), p.ff1_3);
      x.w3 = random_matrix(w, c.ffn_dim, c.dim, {0, c.ffn_dim}, all_dim, inv_sqrt(c.dim), next(), p.ff1_3);
      x.w2 = random_matrix(w, c.dim, c.ffn_dim, all_dim, {0, c.ffn_dim}, inv_sqrt(c.ffn_dim), next(), p.ff2);
      x.attention_norm.assign(static_cast<size_t>(c.dim), 1.0f);
      x.ffn_norm.assign(static_cast<size_t>(c.dim), 1.0f);
      x.q_norm.assign(static_cast<size_t>(c.head_dim), 1.0f);
      x.k_norm.assign(static_cast<size_t>(c.head_dim), 1.0f);
      x.gate_attn = gate(), x.gate_ffn = gate();
      w.cross_layers.push_back(std::move(x));
    }
    w.vision = vision::random_vision_weights(c.vision, next());
    if (quantized_vision_encoder(p)) vision::quantize_vision_matrices(w.vision);
  }
  return w;
}

}  // namespace llama3::model

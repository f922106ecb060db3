#include "model/random_weights.h"

#include <cmath>

#include "core/dtype.h"
#include "core/parallel.h"
#include "model/matrix_convert.h"

namespace llama3::model {
namespace {

// splitmix64: a counter-based generator, so element i of tensor t is the same whichever thread
// fills it.
inline uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Matrix random_matrix(ModelWeights& w, int64_t rows, int64_t cols, double stddev, uint64_t stream,
                     MatrixPrecision precision) {
  AlignedBuffer scratch(static_cast<size_t>(rows * cols) * 2);
  uint16_t* data = reinterpret_cast<uint16_t*>(scratch.data());
  const float half_width = static_cast<float>(stddev * std::sqrt(3.0));  // uniform [-a, a]: std a/sqrt(3)
  const uint64_t base = mix(stream);
  parallel_for(static_cast<size_t>(rows), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const uint64_t bits = mix(base ^ (r * static_cast<uint64_t>(cols) + c));
        const float u = static_cast<float>(bits >> 40) * 0x1p-24f;  // [0, 1)
        data[r * cols + c] = f32_to_bf16((2.0f * u - 1.0f) * half_width);
      }
    }
  });
  const SourceMatrix src{"random", GgmlType::BF16, scratch.data(), rows, cols};
  return convert_scratch(std::move(scratch), src, precision, w);
}

}  // namespace

ModelWeights random_weights(const ModelConfig& c, uint64_t seed, const PrecisionMap& p) {
  ModelWeights w;
  const int64_t q_dim = c.n_heads * c.head_dim;
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  uint64_t stream = mix(seed);
  auto next = [&] { return stream = mix(stream); };
  constexpr double kEmbeddingStd = 0.02;
  constexpr float kFinalNormWeight = 5.0f;
  // Tied: one matrix in the LM head's format; untied: the embedding stays bf16 (precision.h).
  w.tok_embeddings = random_matrix(w, c.vocab_size, c.dim, kEmbeddingStd, next(),
                                   c.tied_embeddings ? p.lm_head : embedding_precision());
  w.output = c.tied_embeddings ? w.tok_embeddings
                               : random_matrix(w, c.vocab_size, c.dim, kEmbeddingStd, next(), p.lm_head);
  auto inv_sqrt = [](int64_t n) { return 1.0 / std::sqrt(static_cast<double>(n)); };
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (auto& layer : w.layers) {
    layer.wq = random_matrix(w, q_dim, c.dim, inv_sqrt(c.dim), next(), p.wqkv);
    layer.wk = random_matrix(w, kv_dim, c.dim, inv_sqrt(c.dim), next(), p.wqkv);
    layer.wv = random_matrix(w, kv_dim, c.dim, inv_sqrt(c.dim), next(), p.wqkv);
    layer.wo = random_matrix(w, c.dim, q_dim, inv_sqrt(q_dim), next(), p.wo);
    layer.w1 = random_matrix(w, c.ffn_dim, c.dim, inv_sqrt(c.dim), next(), p.ff1_3);
    layer.w3 = random_matrix(w, c.ffn_dim, c.dim, inv_sqrt(c.dim), next(), p.ff1_3);
    layer.w2 = random_matrix(w, c.dim, c.ffn_dim, inv_sqrt(c.ffn_dim), next(), p.ff2);
    layer.attention_norm.assign(static_cast<size_t>(c.dim), 1.0f);
    layer.ffn_norm.assign(static_cast<size_t>(c.dim), 1.0f);
  }
  w.norm.assign(static_cast<size_t>(c.dim), kFinalNormWeight);
  return w;
}

}  // namespace llama3::model

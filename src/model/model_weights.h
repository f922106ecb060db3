#pragma once
// The weights of a Llama model in the layouts the kernels run: each matrix [out][in] (y = W x)
// in Meta's RoPE row order, either bf16 row-major or 8-/4-bit blocks in the kernels' packed
// layout (kernels/quant_pack.h); norm vectors in fp32. A matrix points either into a buffer the
// weights own (random init, converted, quantized or merged tensors) or straight into a
// memory-mapped file (a checkpoint's bf16 tensors, or the weight cache).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/weight_format.h"
#include "model/shard_plan.h"
#include "vision/vision_weights.h"

namespace llama3::model {

struct Matrix {
  kernels::WeightFormat format = kernels::WeightFormat::BF16;
  const std::byte* data = nullptr;  // bf16 [rows][cols], or packed blocks
  int64_t rows = 0;
  int64_t cols = 0;

  const uint16_t* bf16() const { return reinterpret_cast<const uint16_t*>(data); }
  size_t bytes() const;  // of data
};

struct LayerWeights {
  Matrix wq, wk, wv, wo;  // [n_heads*hd][dim], [n_kv*hd][dim] x2, [dim][n_heads*hd]
  Matrix w1, w3, w2;      // gate [ffn][dim], up [ffn][dim], down [dim][ffn]
  std::vector<float> attention_norm, ffn_norm;  // [dim]
};

// Llama 3.2 Vision's cross-attention layer (Meta's CrossAttentionTransformerBlock): queries from
// the text, keys and values from the image tokens (no RoPE), q and k RMS-normed per head, the
// attention and the MLP each added through a tanh gate.
struct CrossLayerWeights {
  Matrix wq, wk, wv, wo;  // [n_heads*hd][dim], [n_kv*hd][dim] x2 (wk/wv read the image tokens), [dim][n_heads*hd]
  Matrix w1, w3, w2;
  std::vector<float> attention_norm, ffn_norm;  // [dim]
  std::vector<float> q_norm, k_norm;            // [head_dim]
  float gate_attn = 0.0f, gate_ffn = 0.0f;      // tanh applied when used
};

// Bytes aligned to 64 (a cache line, and the widest vector load), owned.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t bytes);
  std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte[], Free> data_;
  size_t size_;
};

struct ModelWeights {
  // The share of the model these weights are (shard_plan.h; only rank and ranks are read, the
  // slices follow from them): the whole model by default. The shapes in the comments below are
  // the whole model's; a rank holds the plan's slices of them.
  ShardPlan shard;
  Matrix tok_embeddings;  // [vocab][dim]
  Matrix output;          // [vocab][dim]; the same bytes as tok_embeddings when tied
  std::vector<LayerWeights> layers;
  std::vector<float> norm;  // [dim]
  // Vision models only: the cross-attention layers (config.cross_attention_before gives where
  // each runs), the embeddings of the ids from vocab_size on ([extra_embeddings][dim]; the image
  // token's is row 0) and the image encoder.
  std::vector<CrossLayerWeights> cross_layers;
  std::vector<float> extra_embeddings;
  vision::VisionWeights vision;

  // Owners of the bytes the matrices point to.
  std::vector<AlignedBuffer> buffers;
  std::vector<std::shared_ptr<const void>> keep_alive;  // mapped checkpoint or cache files

  // A new owned buffer, uninitialized: every caller writes all of it.
  std::byte* allocate_bytes(size_t n);
  uint16_t* allocate(int64_t n) { return reinterpret_cast<uint16_t*>(allocate_bytes(static_cast<size_t>(n) * 2)); }
  bool tied() const { return output.data == tok_embeddings.data; }
};

// One row of a matrix in fp32, whatever its format (the embedding lookup, writers, tests).
void matrix_row_f32(const Matrix& m, int64_t row, float* out);

}  // namespace llama3::model

#pragma once
// The weights of a Llama model in the layout the kernels use: bf16 row-major matrices [out][in]
// (y = W x) in Meta's RoPE row order, fp32 norm vectors. A matrix points either into a buffer the
// weights own (random init, converted or merged tensors) or straight into a memory-mapped file
// when the file's bytes already have that layout.
#include <cstdint>
#include <memory>
#include <vector>

namespace llama3::model {

struct Matrix {
  const uint16_t* data = nullptr;  // bf16 [rows][cols]
  int64_t rows = 0;
  int64_t cols = 0;
};

struct LayerWeights {
  Matrix wq, wk, wv, wo;  // [n_heads*hd][dim], [n_kv*hd][dim] x2, [dim][n_heads*hd]
  Matrix w1, w3, w2;      // gate [ffn][dim], up [ffn][dim], down [dim][ffn]
  std::vector<float> attention_norm, ffn_norm;  // [dim]
};

struct ModelWeights {
  Matrix tok_embeddings;  // [vocab][dim]
  Matrix output;          // [vocab][dim]; the same bytes as tok_embeddings when tied
  std::vector<LayerWeights> layers;
  std::vector<float> norm;  // [dim]

  // Owners of the bytes the matrices point to.
  std::vector<std::unique_ptr<uint16_t[]>> buffers;
  std::vector<std::shared_ptr<const void>> keep_alive;  // mapped checkpoint files

  // A new owned bf16 buffer of n elements (uninitialized).
  uint16_t* allocate(int64_t n);
};

}  // namespace llama3::model

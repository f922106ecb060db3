#pragma once
// The small model the tests run: real Llama structure (GQA 4 query / 2 kv heads, scaled RoPE)
// at sizes that run in milliseconds.
#include <cstdint>

#include "model/model_config.h"

namespace llama3::testing {

inline model::ModelConfig tiny_config(int64_t vocab_size = 300, bool tied = false, double rope_factor = 8.0) {
  model::ModelConfig c;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.ffn_dim = 96;
  c.vocab_size = vocab_size;
  c.tied_embeddings = tied;
  c.rope_scaling.enabled = true;
  c.rope_scaling.factor = rope_factor;
  c.max_seq_len = 4096;
  return c;
}

}  // namespace llama3::testing

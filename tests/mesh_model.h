#pragma once
// Small models whose every dimension splits over 1, 2, 4 and 8 ranks (shard_plan.h): each of 8
// ranks gets 64 MLP rows and (at least) one 32-wide head, whole blocks of the 8-/4-bit formats. GQA (8 query heads sharing 2 kv heads: on
// 4 and 8 ranks a kv head is replicated) and MHA (8 and 8), tied and untied; the vocabulary of
// 300 does not divide by 8, so the last rank's slice is shorter.
#include <cstdint>

#include "model/model_config.h"

namespace llama3::testing {

inline model::ModelConfig mesh_config(bool gqa, bool tied) {
  model::ModelConfig c;
  c.dim = 256;
  c.n_layers = 2;
  c.n_heads = 8;
  c.n_kv_heads = gqa ? 2 : 8;
  c.head_dim = 32;
  c.ffn_dim = 512;
  c.vocab_size = 300;
  c.tied_embeddings = tied;
  c.rope_scaling.enabled = true;
  c.rope_scaling.factor = 8.0;
  c.max_seq_len = 4096;
  return c;
}

}  // namespace llama3::testing

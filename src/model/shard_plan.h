#pragma once
// What one rank of a tensor-parallel group holds of a Llama model (Megatron-style split):
//  - attention: whole heads. wq/wk/wv keep their rows of the rank's heads (column-parallel),
//    wo its columns of the same heads (row-parallel, summed over ranks by one all-reduce);
//    with more ranks than kv heads, each kv head is replicated on ranks/n_kv ranks and its
//    group of query heads is split between them;
//  - MLP: w1/w3 rows and w2 columns of one slice of the hidden dimension (one all-reduce);
//  - embedding and LM head: rows of one slice of the vocabulary (a token's embedding row is on
//    one rank; the others add zeros in an all-reduce); the final logits are gathered.
// The plan of rank r of 1 is the whole model, so one code path serves every mesh.
#include <cstdint>
#include <string>

#include "model/model_config.h"

namespace llama3::model {

struct Slice {
  int64_t begin = 0;
  int64_t size = 0;
  int64_t end() const { return begin + size; }
};

struct ShardPlan {
  int rank = 0;
  int ranks = 1;
  Slice q_heads;   // query heads of this rank
  Slice kv_heads;  // kv heads of this rank (one replicated head when ranks > n_kv_heads)
  Slice q_rows;    // the query heads' rows of wq (and columns of wo): q_heads x head_dim
  Slice kv_rows;   // the kv heads' rows of wk and wv: kv_heads x head_dim
  Slice ffn;       // rows of w1/w3, columns of w2
  Slice vocab;     // rows of the embedding and the LM head (the same slice when tied)
  int64_t vocab_stride = 0;  // the largest rank's vocab slice: gathered logits are padded to it

  bool whole() const { return ranks == 1; }
  std::string describe() const;  // one line for logs and errors
};

// Which share of a tensor-parallel group a process builds: the loaders take this, the plan
// follows from it and the model's config.
struct Share {
  int rank = 0;
  int ranks = 1;
  bool whole() const { return ranks == 1; }
};

// The plan of `rank` in a group of `ranks`; throws llama3::Error naming the constraint when the
// model cannot be split that way (heads, kv heads or the MLP width not divisible, or an MLP
// slice that is not a multiple of 32, the width of a quantized block).
ShardPlan shard_plan(const ModelConfig& config, int rank, int ranks);
inline ShardPlan shard_plan(const ModelConfig& config, Share share) {
  return shard_plan(config, share.rank, share.ranks);
}

// The config a rank's KV cache and memory figures use: its own kv heads.
ModelConfig shard_kv_config(const ModelConfig& config, const ShardPlan& plan);

}  // namespace llama3::model

#pragma once
// The Llama 3 forward pass over a batch. One function serves prefill and decode: each batch
// item brings new tokens of one sequence, their start position and the sequence's block table;
// decode is the case of one token per item. All items go through each weight matrix together,
// so a decode step reads every weight once for the whole batch.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "dist/communicator.h"
#include "kernels/quant_matmul.h"
#include "model/cross_attention_context.h"
#include "model/kv_cache.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "vision/image_preprocess.h"

namespace llama3::model {

// Time and bytes of the collectives of a mesh's forward passes (on this rank): what a step
// spends communicating, beside computing (llama3 bench on a mesh prints it). The time includes
// waiting for the slowest rank of the group.
struct CollectiveStats {
  int64_t all_reduces = 0;
  int64_t all_reduce_bytes = 0;
  int64_t gathers = 0;
  int64_t gather_bytes = 0;      // the bytes each rank sends
  int64_t broadcasts = 0;        // batches sent to followers
  double seconds = 0.0;          // in all of them
};

struct BatchItem {
  std::span<const int32_t> tokens;       // the new tokens
  int64_t start_pos = 0;                 // position of tokens[0]; positions before are cached
  std::span<const int32_t> block_table;  // must cover start_pos + tokens.size() positions
  bool all_logits = false;               // logits for every new token, not only the last
  // Added to positions for RoPE only (the demo's --start_pos): the cache slots stay 0-based, so
  // a short prompt can be run at large absolute positions without filling the cache before it.
  int64_t rope_offset = 0;
  // A vision model's request with images: their cross-attention keys and values and who sees
  // them (image_context()); null for text. Must outlive the call.
  const CrossAttentionContext* images = nullptr;
};


// On a tensor-parallel mesh every rank of a group holds its share of the weights (shard_plan.h)
// and calls forward() with the same batch; the pass reads as the single-rank one with an
// all-reduce after each row-parallel product and a gather of the logits. The KV cache holds the
// rank's kv heads only (shard_kv_config).
class LlamaModel {
 public:
  // `group` (which must outlive the model) is the weights' tensor-parallel group; none for a
  // whole model.
  LlamaModel(ModelConfig config, ModelWeights weights, dist::Communicator* group = nullptr);
  ~LlamaModel();  // a leader releases its followers
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const ModelConfig& config() const { return config_; }
  // The shape of this rank's KV cache: its own kv heads (the whole model's on one rank).
  ModelConfig kv_config() const { return shard_kv_config(config_, shard_); }
  const ModelWeights& weights() const { return weights_; }

  // Appends the items' keys/values to `cache` and writes logits rows to `logits`
  // ([rows][vocab], the whole vocabulary on every rank): per item in order, its last token's
  // row, or all its tokens' rows.
  // Throws llama3::Error on a token id outside the vocabulary or a short block table.
  void forward(std::span<const BatchItem> batch, KvCache& cache, std::vector<float>& logits);

  // The memory of one forward pass over `tokens` tokens that returns `logit_rows` rows: the
  // scratch below at that size, the quantized activations and the logits (the memory plan's
  // figure; kept beside the code that allocates so the two change together).
  static size_t activation_bytes(const ModelConfig& c, int64_t tokens, int64_t logit_rows);

  // A vision model's view of a request's images: runs the image encoder on each, then every
  // cross-attention layer's key and value projections of the image tokens (once per request, not
  // per step). `prompt` places them: the image token (config().image_token_id()) marks each
  // image, in order. Throws llama3::Error when the counts differ, or on a text-only model.
  CrossAttentionContext image_context(std::span<const vision::ImageTiles> images, std::span<const int32_t> prompt);
  // Seconds the image encoder took in image_context() calls so far (the vision benchmark's figure).
  double encoder_seconds() const { return encoder_seconds_; }

  // Serving on a mesh: rank 0 of the group schedules and calls forward() after lead(), which
  // makes each call first broadcast its batch (batch_broadcast.h); the other ranks call follow(),
  // which runs the same passes on their shards until rank 0 calls release_followers().
  // A follower keeps a KV cache of its kv heads for each cache the leader runs on.
  void lead() { leads_followers_ = group_ != nullptr && group_->size() > 1; }
  void follow();
  void release_followers();

  // What rank 0 of a mesh needs of each logits row from now on: its `k` largest logits (the
  // sampler's top_k; 1 for argmax), or the whole row (0, the default). With k > 0 each rank
  // sends its vocabulary slice's k largest (value and id) instead of the slice, and the rows
  // come back holding those candidates and -inf elsewhere: sampling with top_k <= k picks the
  // same token as from the whole row. Rank 0 sends it to the followers with each pass; one rank
  // always returns whole rows.
  void set_logit_candidates(int64_t k) { logit_candidates_ = std::max<int64_t>(k, 0); }
  int64_t logit_candidates() const { return logit_candidates_; }

  // The all-reduces' payload on a mesh: fp32 (the default), or bf16 (half the bytes; each
  // rank's partial sums and their sum rounded to bf16: docs/PERF.md has the accuracy cost).
  void set_bf16_payload(bool bf16) { bf16_payload_ = bf16; }

  const CollectiveStats& collective_stats() const { return stats_; }
  void reset_collective_stats() { stats_ = {}; }
  int mesh_ranks() const { return shard_.ranks; }

 private:
  void attention_layer(int64_t layer, std::span<const BatchItem> batch, KvCache& cache);
  void ffn_layer(int64_t layer);
  void cross_layer(int64_t index, std::span<const BatchItem> batch);  // Llama 3.2 Vision's
  void add_residual(int64_t n);  // x += out over the first n values, out summed over the group first
  void embed(std::span<const BatchItem> batch);
  void gather_logits(int64_t rows, std::vector<float>& logits);
  void gather_candidates(int64_t rows, std::vector<float>& logits);
  void all_gather(std::span<const std::byte> mine, std::span<std::byte> all);  // group_'s, timed
  // y = W x for each product, for the `rows` rows of x ([rows][W.cols], all W of one width).
  struct Product {
    const Matrix* w;
    float* y;  // [rows][W.rows]
  };
  void project(const float* x, int64_t rows, std::initializer_list<Product> products);

  ModelConfig config_;
  ModelWeights weights_;
  dist::Communicator* group_;  // null for a whole model
  bool leads_followers_ = false;
  int64_t logit_candidates_ = 0;
  bool bf16_payload_ = false;
  ShardPlan shard_;  // the slices the weights hold, from their rank and rank count
  CollectiveStats stats_;
  void all_reduce(float* data, int64_t n);  // group_'s, timed
  const ShardPlan& shard() const { return shard_; }
  std::vector<double> rope_freqs_;

  // Activations of the current call, [tokens][width] each; reused across calls.
  struct Scratch {
    std::vector<float> x, xn, q, k, v, attn, out, h1, h3, cos, sin;
    // Mesh only: logits of the rank's vocabulary slice, padded to the largest slice, all ranks'.
    std::vector<float> local_logits, padded_logits, gathered;
    struct Candidate {
      float logit;
      int32_t id;
    };
    std::vector<Candidate> candidates, gathered_candidates;  // [rows][k] of this rank, of all ranks
    std::vector<int32_t> candidate_order;  // a row's vocabulary slice, ordered while selecting
    std::vector<int64_t> pos;        // position of each token
    std::vector<int32_t> item_of;    // batch item of each token
  } s_;
  kernels::QuantizedActivations xq_;  // x quantized for the 8-/4-bit products
  int64_t tokens_ = 0;
  double encoder_seconds_ = 0.0;
  std::vector<uint8_t> row_sees_image_;  // cross layers: per token, whether any image is visible
};

}  // namespace llama3::model

#pragma once
// A few sequences run straight through the model with a KV cache of their own (contiguous
// block tables, no scheduler): what the benchmark and accuracy commands need to prefill a text
// and decode after it. The demo and the server use the engine (llama3/engine.h) instead.
#include <cstdint>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "model/llama_model.h"

namespace llama3::runtime {

class SequenceRunner {
 public:
  // Room for `capacity` tokens in each of `sequences` sequences.
  SequenceRunner(model::LlamaModel& model, int64_t sequences, int64_t capacity,
                 kernels::KvDType kv_dtype = kernels::KvDType::BF16);

  // Appends `tokens` to sequence `s` in forward passes of at most `chunk` tokens. With
  // `all_logits`, `logits` receives a row for every token, else only the last token's row.
  void prefill(int64_t s, std::span<const int32_t> tokens, int64_t chunk, bool all_logits, std::vector<float>& logits);

  // One decode step: tokens[s] appended to each of the first tokens.size() sequences, one
  // forward pass for all; logits gets one row per sequence.
  void decode(std::span<const int32_t> tokens, std::vector<float>& logits);

  // Appends n positions of random keys and values to sequence s in every layer without running
  // the model: a cache at depth for timing decode, whose cost does not depend on the values.
  void fill_synthetic(int64_t s, int64_t n, uint32_t seed);

  int64_t length(int64_t s) const { return lengths_[static_cast<size_t>(s)]; }
  std::span<const int32_t> block_table(int64_t s) const { return tables_.at(static_cast<size_t>(s)); }
  void reset();  // every sequence back to empty (the cache is overwritten as they refill)
  const model::KvCache& cache() const { return cache_; }

 private:
  void check_room(int64_t s, int64_t n) const;

  model::LlamaModel& model_;
  int64_t capacity_;
  model::KvCache cache_;
  std::vector<std::vector<int32_t>> tables_;
  std::vector<int64_t> lengths_;
  std::vector<model::BatchItem> items_;
};

// The index of the largest of the last `vocab` values of `logits` row `row`.
int32_t argmax_row(const std::vector<float>& logits, int64_t row, int64_t vocab);

}  // namespace llama3::runtime

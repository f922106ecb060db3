#pragma once
// The generation loop of the demo: up to batch_size users share one model. Each user's prompt is
// prefilled on its own (in chunks), then every active user advances one token per decode step in
// ONE batched forward pass. KV blocks come from a shared pool through per-user page tables.
//
// Modes: static batches (the original demo: a batch starts together and ends when its last user
// finishes) or continuous batching (a finished user's slot takes the next waiting prompt at
// once). Stress mode recycles a user that reaches max_seq_len (blocks freed, prompt prefilled
// again) so decoding runs indefinitely in bounded memory.
//
// Out of KV blocks: the youngest active user is preempted (its blocks freed, it goes back to the
// front of the queue and is prefilled again later with its prompt and what it generated so far;
// its text is unchanged because its sampler state is kept). A user that cannot fit even alone is
// an error giving blocks needed vs available.
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/timer.h"
#include "kernels/kv_pool.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
#include "runtime/block_allocator.h"
#include "runtime/sampler.h"

namespace llama3::runtime {

struct GenerationOptions {
  int batch_size = 32;
  int64_t max_seq_len = 1024;
  int64_t max_generated_tokens = 128;
  bool paged = true;  // false: a contiguous per-user cache of max_seq_len (one block per user)
  int64_t block_size = 32;
  int64_t num_blocks = 1024;
  SamplingParams sampling;
  bool continuous_batching = false;
  bool stress_test = false;
  int64_t prefill_chunk = 256;
  int64_t start_pos = 0;  // RoPE offset of every prompt
  kernels::KvDType kv_dtype = kernels::KvDType::BF16;
  bool check_finite = false;  // every step; always on in stress mode
  bool shuffle_blocks = false;  // tests: physical blocks handed out in a shuffled order
};

struct Request {
  std::vector<int32_t> prompt_tokens;
  uint64_t sampler_stream = 0;  // the user's random stream: same seed + stream, same text
};

struct UserResult {
  std::vector<int32_t> generated;
  std::string stop_reason;  // stop_token | max_generated_tokens | max_seq_len
  double ttft_ms = 0.0;     // from the start of the run (or of its batch) to the first token
  int64_t preemptions = 0;
  int64_t recycles = 0;  // stress mode: times the context filled up and was restarted
};

struct IterationStat {
  int64_t iteration = 0;
  double ms = 0.0;
  int active_users = 0;
};

struct GenerationStats {
  int64_t prefill_tokens = 0;
  double prefill_seconds = 0.0;
  int64_t decode_tokens = 0;
  double decode_seconds = 0.0;
  int64_t peak_blocks = 0;
  int64_t total_blocks = 0;
  int64_t preemptions = 0;
  size_t kv_bytes = 0;
};

class BatchGenerator {
 public:
  using StopPredicate = std::function<bool(int32_t)>;
  // Called for every token a user produces: (request index, token).
  using TokenCallback = std::function<void(size_t request, int32_t token)>;
  using IterationCallback = std::function<void(const IterationStat&)>;

  BatchGenerator(model::LlamaModel& model, GenerationOptions options, StopPredicate is_stop);

  // Runs all requests to completion (requests[i]'s result is results[i]).
  std::vector<UserResult> run(const std::vector<Request>& requests, const TokenCallback& on_token,
                              const IterationCallback& on_iteration);

  const GenerationStats& stats() const { return stats_; }
  const BlockAllocator& allocator() const { return allocator_; }

 private:
  struct Slot {
    bool active = false;
    size_t request = 0;
    std::vector<int32_t> tokens;  // prompt + generated since the last (re)start; the last is not cached yet
    int64_t cached = 0;           // tokens whose K/V are in the cache
    PageTable table;
    int64_t admitted = 0;  // admission order: the youngest is preempted first
  };
  void admit(Slot& slot, size_t request);
  void prefill(Slot& slot, double batch_start_ms);
  // Grows the slot's page table to `length` tokens, preempting younger users if the pool is
  // short. Returns false if `slot` itself was the one preempted.
  bool ensure_blocks(Slot& slot, int64_t length);
  void preempt(Slot& slot);
  // Appends a sampled token; finishes or recycles the user as its stop conditions say.
  void accept_token(Slot& slot, std::span<const float> logits, double batch_start_ms, double now_ms);
  void finish(Slot& slot, const char* reason);

  model::LlamaModel& model_;
  GenerationOptions opt_;
  StopPredicate is_stop_;
  model::KvCache cache_;
  BlockAllocator allocator_;
  GenerationStats stats_;
  std::vector<float> logits_;

  // State of the current run().
  const std::vector<Request>* requests_ = nullptr;
  const TokenCallback* on_token_ = nullptr;
  std::vector<Slot> slots_;
  std::deque<size_t> queue_;
  std::vector<UserResult> results_;
  std::vector<std::optional<Sampler>> samplers_;
  int64_t admissions_ = 0;
  Timer run_timer_;
};

}  // namespace llama3::runtime

#pragma once
// The serving engine's scheduler (continuous batching, vLLM's seams): requests wait in a queue,
// join the running batch (up to max_batch) at the next step and leave when they finish. Each
// step is ONE forward pass over a token budget: first one token for every decoding request, then
// prefill chunks of newcomers in admission order while the budget lasts (at least one chunk when
// nothing decodes), so a long prompt never stalls the running users for more than a chunk.
//
// Prefill chunks are aligned to multiples of prefill_chunk positions, and prefix-cache hits are
// cut back to such a multiple: every position's keys and values are then computed from the same
// tokens in the same chunk whatever ran before or beside it, so a request's text does not depend
// on the cache or on the other requests (the forward pass treats the rows of a batch
// independently).
//
// Out of KV blocks: the youngest running request is preempted (its blocks released, its full
// blocks staying in the prefix cache) and goes back to the front of the queue with what it has
// generated; its sampler state is kept, so its text is unchanged. A request that cannot fit even
// alone fails with a message giving both figures.
// Single-threaded: the engine's loop thread owns it.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/timer.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
#include "runtime/prefix_block_pool.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"
#include "vision/image_preprocess.h"

namespace llama3::runtime {

struct SchedulerOptions {
  int max_batch = 32;
  int64_t max_seq_len = 8192;
  int64_t prefill_chunk = 256;  // a multiple of block_size
  int64_t step_tokens = 512;
  bool prefix_caching = true;
  int64_t block_size = 32;
  int64_t num_blocks = 1024;
  kernels::KvDType kv_dtype = kernels::KvDType::BF16;
  int64_t position_offset = 0;  // RoPE position of every prompt's first token
  bool check_finite = false;    // a request whose logits hold NaN/Inf fails
  bool decode_waits_for_prefill = false;  // no decode step while an admitted request is prefilling
};

// What one step did, for the step observer.
struct StepRecord {
  int64_t step = 0;
  double ms = 0.0;
  int decode_tokens = 0;
  int64_t prefill_tokens = 0;
  int running = 0;
  int64_t waiting = 0;
  int64_t kv_blocks_used = 0;  // during the forward pass
};

struct ScheduledToken {
  int32_t token = 0;
  std::string text;            // complete UTF-8 (empty without a tokenizer)
  bool has_logprob = false;    // asked for (top_logprobs >= 0)
  float logprob = 0.0f;        // log-softmax of the raw logits
  std::vector<std::pair<int32_t, float>> top;  // the N most likely (when asked)
};

enum class StopReason { stop, length, cancelled, error };

struct ScheduledResult {
  StopReason reason = StopReason::stop;
  std::string error;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double ttft_ms = 0.0;
  double total_ms = 0.0;
  int64_t preemptions = 0;
  std::optional<int32_t> stop_token;  // reason == stop: the token that ended it
};

struct ScheduledRequest {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  uint64_t sampler_stream = 0;
  int64_t max_tokens = 128;
  std::vector<int32_t> stop_tokens;  // every id that ends the request (end-of-turn ids included)
  int top_logprobs = -1;             // -1: none
  bool reuse_all_cached_blocks = false;  // prefix hits not cut back to whole prefill chunks
  // A vision model's images, preprocessed, one per image token of the prompt. Their encoding
  // runs when the request is first admitted (the engine's thread, between steps), and a request
  // with images takes no part in prefix caching: its K/V depend on the images, not only on the
  // tokens.
  std::vector<vision::ImageTiles> images;
  double submit_ms = 0.0;            // on the scheduler's clock (now_ms())
  std::function<void(const ScheduledToken&)> on_token;
  std::function<void(const ScheduledResult&)> on_done;
};

struct SchedulerCounters {
  int64_t finished = 0, cancelled = 0, failed = 0;
  int64_t prompt_tokens = 0, prompt_tokens_cached = 0, generated_tokens = 0;
  int64_t preemptions = 0, steps = 0;
  // check_finite: rows of logits checked before sampling, and those holding NaN/Inf (each fails its request).
  int64_t logits_checked = 0, logits_nonfinite = 0;
};

class Scheduler {
 public:
  // `tok` may be null (token ids only; no text in the events).
  Scheduler(model::LlamaModel& model, const SchedulerOptions& options, const tokenizer::Tokenizer* tok);
  ~Scheduler();

  void add(ScheduledRequest request);
  // Finishes the request as cancelled (callback included) and frees its blocks; false if unknown.
  bool cancel(uint64_t id);
  // Cancels everything (shutdown).
  void cancel_all();
  bool idle() const { return waiting_.empty() && running_.empty(); }
  // One forward pass of the batch the budget allows. Throws only on a bug (a step that neither
  // computed a token nor ended a request while work waited); a request's own failure (e.g. too
  // long for the pool) finishes that request with an error.
  void step();
  // Fails every request with `error` (the engine, after step() threw).
  void fail_all(const std::string& error);
  // Called at the end of every step that ran a forward pass.
  void set_step_observer(std::function<void(const StepRecord&)> observer) { observer_ = std::move(observer); }

  double now_ms() const { return clock_.ms(); }
  int64_t waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t running() const { return static_cast<int64_t>(running_.size()); }
  const SchedulerCounters& counters() const { return counters_; }
  const PrefixBlockPool& pool() const { return pool_; }
  const SchedulerOptions& options() const { return opt_; }
  // Tests only: blocks taken here behind the scheduler's back simulate a leak.
  PrefixBlockPool& pool_for_testing() { return pool_; }
  size_t kv_cache_bytes() const { return cache_.bytes(); }

 private:
  struct Sequence;
  bool run_step();  // false when it planned nothing
  void admit(std::unique_ptr<Sequence> seq);
  void match_prefix(Sequence& seq);
  void publish_full_blocks(Sequence& seq);
  // Grows every planned item's table; preempts the youngest running requests until they fit.
  bool reserve_blocks(std::vector<Sequence*>& planned, std::vector<int64_t>& counts);
  void preempt(Sequence& seq);
  void accept_token(Sequence& seq, std::span<const float> logits);
  // The logit candidates this step's sampling needs (LlamaModel::set_logit_candidates).
  int64_t logit_candidates(const std::vector<Sequence*>& planned, const std::vector<int64_t>& counts) const;
  void finish(Sequence& seq, StopReason reason, const std::string& error = {});
  void remove_finished();

  model::LlamaModel& model_;
  SchedulerOptions opt_;
  const tokenizer::Tokenizer* tok_;
  model::KvCache cache_;
  PrefixBlockPool pool_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;  // admission order
  std::vector<float> logits_;
  SchedulerCounters counters_;
  std::function<void(const StepRecord&)> observer_;
  int64_t admissions_ = 0;
  Timer clock_;
};

}  // namespace llama3::runtime

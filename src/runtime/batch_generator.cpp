#include "runtime/batch_generator.h"

#include <algorithm>

#include "core/error.h"
#include "core/timer.h"
#include "kernels/elementwise.h"

namespace llama3::runtime {

namespace {

model::KvCache make_cache(const model::ModelConfig& c, const GenerationOptions& o) {
  // Contiguous mode is the degenerate page table: one block of max_seq_len per user.
  return o.paged ? model::KvCache(c, o.num_blocks, o.block_size, o.kv_dtype)
                 : model::KvCache(c, o.batch_size, o.max_seq_len, o.kv_dtype);
}

}  // namespace

BatchGenerator::BatchGenerator(model::LlamaModel& model, GenerationOptions options, StopPredicate is_stop)
    : model_(model),
      opt_(std::move(options)),
      is_stop_(std::move(is_stop)),
      cache_(make_cache(model.config(), opt_)),
      allocator_(static_cast<int32_t>(cache_.num_blocks()), static_cast<int32_t>(cache_.block_size())) {
  check(opt_.batch_size >= 1 && opt_.batch_size <= 32, "batch_size {} is not in 1..32", opt_.batch_size);
  check(opt_.max_seq_len >= 2 && opt_.start_pos >= 0 && opt_.start_pos + opt_.max_seq_len <= model.config().max_seq_len,
        "max_seq_len {} + start_pos {} must be within 2..{} for {}", opt_.max_seq_len, opt_.start_pos,
        model.config().max_seq_len, model.config().name);
  check(opt_.prefill_chunk >= 1, "prefill chunk must be positive");
  if (opt_.shuffle_blocks) allocator_.shuffle_free_list(opt_.sampling.seed);
  stats_.total_blocks = cache_.num_blocks();
  stats_.kv_bytes = cache_.bytes();
}

void BatchGenerator::admit(Slot& slot, size_t request) {
  const Request& r = (*requests_)[request];
  check(!r.prompt_tokens.empty(), "user {} has an empty prompt", request);
  slot.active = true;
  slot.request = request;
  // A preempted user resumes with its prompt and what it had generated (since its last recycle).
  slot.tokens = r.prompt_tokens;
  const UserResult& res = results_[request];
  if (!opt_.stress_test) slot.tokens.insert(slot.tokens.end(), res.generated.begin(), res.generated.end());
  check(static_cast<int64_t>(slot.tokens.size()) < opt_.max_seq_len,
        "user {}: prompt of {} tokens does not fit max_seq_len {}", request, slot.tokens.size(), opt_.max_seq_len);
  slot.cached = 0;
  slot.admitted = admissions_++;
  if (!samplers_[request]) samplers_[request].emplace(opt_.sampling, r.sampler_stream);
}

void BatchGenerator::preempt(Slot& victim) {
  allocator_.release(victim.table);
  victim.active = false;
  victim.cached = 0;
  queue_.push_front(victim.request);
  ++results_[victim.request].preemptions;
  ++stats_.preemptions;
}

bool BatchGenerator::ensure_blocks(Slot& slot, int64_t length) {
  while (!allocator_.can_grow(slot.table, static_cast<int32_t>(length))) {
    Slot* victim = nullptr;
    for (Slot& s : slots_) {
      if (s.active && (victim == nullptr || s.admitted > victim->admitted)) victim = &s;
    }
    const int64_t needed = (length + allocator_.block_size() - 1) / allocator_.block_size();
    check(victim != nullptr && !(victim == &slot && allocator_.used_blocks() == static_cast<int32_t>(slot.table.blocks.size())),
          "out of KV blocks: a user needs {} blocks of {} tokens, the pool has {} (raise page_max_num_blocks)",
          needed, allocator_.block_size(), allocator_.num_blocks());
    preempt(*victim);
    if (victim == &slot) return false;
  }
  allocator_.grow(slot.table, static_cast<int32_t>(length));
  return true;
}

void BatchGenerator::finish(Slot& slot, const char* reason) {
  results_[slot.request].stop_reason = reason;
  allocator_.release(slot.table);
  slot.active = false;
}

void BatchGenerator::accept_token(Slot& slot, std::span<const float> logits, double batch_start_ms, double now_ms) {
  if (opt_.check_finite || opt_.stress_test) {
    check(kernels::all_finite(logits.data(), static_cast<int64_t>(logits.size())),
          "non-finite logits (NaN or Inf) for user {} at position {}", slot.request, slot.cached);
  }
  const int32_t token = samplers_[slot.request]->sample(logits);
  UserResult& res = results_[slot.request];
  if (res.generated.empty()) res.ttft_ms = now_ms - batch_start_ms;
  res.generated.push_back(token);
  slot.tokens.push_back(token);
  if (*on_token_) (*on_token_)(slot.request, token);
  const bool out_of_tokens = static_cast<int64_t>(res.generated.size()) >= opt_.max_generated_tokens;
  const bool context_full = static_cast<int64_t>(slot.tokens.size()) >= opt_.max_seq_len;
  if (out_of_tokens) return finish(slot, "max_generated_tokens");
  if (opt_.stress_test && (context_full || is_stop_(token))) {
    // Recycle: free the blocks and start the prompt again, so memory stays bounded.
    allocator_.release(slot.table);
    slot.tokens = (*requests_)[slot.request].prompt_tokens;
    slot.cached = 0;
    ++res.recycles;
    return;
  }
  if (is_stop_(token)) return finish(slot, "stop_token");
  if (context_full) return finish(slot, "max_seq_len");
}

void BatchGenerator::prefill(Slot& slot, double batch_start_ms) {
  const Timer timer;
  const int64_t n = static_cast<int64_t>(slot.tokens.size());
  if (!ensure_blocks(slot, n)) return;
  while (slot.cached < n) {
    const int64_t chunk = std::min(opt_.prefill_chunk, n - slot.cached);
    const model::BatchItem item{std::span(slot.tokens).subspan(static_cast<size_t>(slot.cached), static_cast<size_t>(chunk)),
                                slot.cached, slot.table.blocks, false, opt_.start_pos};
    model_.forward({&item, 1}, cache_, logits_);
    slot.cached += chunk;
  }
  stats_.prefill_tokens += n;
  stats_.prefill_seconds += timer.seconds();
  accept_token(slot, logits_, batch_start_ms, run_timer_.ms());
}

std::vector<UserResult> BatchGenerator::run(const std::vector<Request>& requests, const TokenCallback& on_token,
                                            const IterationCallback& on_iteration) {
  requests_ = &requests;
  on_token_ = &on_token;
  results_.assign(requests.size(), UserResult{});
  samplers_.assign(requests.size(), std::nullopt);
  slots_.assign(static_cast<size_t>(opt_.batch_size), Slot{});
  queue_.clear();
  for (size_t i = 0; i < requests.size(); ++i) queue_.push_back(i);
  run_timer_.reset();
  double batch_start_ms = 0.0;
  int64_t iteration = 0;
  std::vector<model::BatchItem> batch;
  std::vector<Slot*> decoding;
  auto any_active = [&] { return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.active; }); };
  while (!queue_.empty() || any_active()) {
    // Admission: continuous batching refills any free slot; static batching starts a new batch
    // only when the previous one has fully finished.
    if (opt_.continuous_batching || !any_active()) {
      if (!any_active()) batch_start_ms = opt_.continuous_batching ? 0.0 : run_timer_.ms();
      for (Slot& slot : slots_) {
        if (slot.active || queue_.empty()) continue;
        const size_t request = queue_.front();
        queue_.pop_front();
        admit(slot, request);
        prefill(slot, batch_start_ms);
      }
    }
    // One decode step for every user whose last token is not cached yet.
    const Timer step;
    decoding.clear();
    for (Slot& slot : slots_) {
      if (!slot.active) continue;
      if (slot.cached + 1 < static_cast<int64_t>(slot.tokens.size())) {  // recycled in stress mode
        prefill(slot, batch_start_ms);
        continue;
      }
      if (ensure_blocks(slot, static_cast<int64_t>(slot.tokens.size()))) decoding.push_back(&slot);
    }
    std::erase_if(decoding, [](const Slot* s) { return !s->active; });  // preempted by a later slot
    if (decoding.empty()) continue;
    batch.clear();
    for (Slot* slot : decoding) {
      batch.push_back({std::span(&slot->tokens.back(), 1), slot->cached, slot->table.blocks, false, opt_.start_pos});
    }
    model_.forward(batch, cache_, logits_);
    const int64_t vocab = model_.config().vocab_size;
    const double now = run_timer_.ms();
    for (size_t i = 0; i < decoding.size(); ++i) {
      Slot& slot = *decoding[i];
      slot.cached += 1;
      accept_token(slot, std::span(logits_).subspan(i * static_cast<size_t>(vocab), static_cast<size_t>(vocab)),
                   batch_start_ms, now);
    }
    const double ms = step.ms();
    stats_.decode_tokens += static_cast<int64_t>(decoding.size());
    stats_.decode_seconds += ms / 1e3;
    if (on_iteration) on_iteration({iteration++, ms, static_cast<int>(decoding.size())});
  }
  stats_.peak_blocks = allocator_.peak_used_blocks();
  return results_;
}

}  // namespace llama3::runtime

#include "runtime/scheduler.h"

#include <algorithm>

#include <fmt/core.h>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "runtime/logit_stats.h"

namespace llama3::runtime {

struct Scheduler::Sequence {
  ScheduledRequest req;
  std::vector<int32_t> tokens;  // prompt + generated; the last is not cached while decoding
  int64_t generated = 0;
  int64_t cached = 0;              // positions whose K/V are in the cache
  std::vector<int32_t> blocks;     // page table
  std::vector<uint64_t> hashes;    // prefix hashes of blocks[0 .. hashes.size())
  std::optional<Sampler> sampler;  // kept across preemptions: the text does not change
  std::optional<tokenizer::StreamDecoder> decoder;
  int64_t admitted = 0;
  bool started = false;        // its first chunk since (re)admission has been planned
  bool ever_started = false;  // the prompt's cache hit has been counted
  bool done = false;
  ScheduledResult result;
  std::unique_ptr<model::CrossAttentionContext> images;  // kept across preemptions
};

namespace {

template <typename Fn, typename Arg>
void call_quietly(const Fn& fn, const Arg& arg) {
  // A callback that throws must not take the engine down with it.
  if (!fn) return;
  try {
    fn(arg);
  } catch (...) {
  }
}

}  // namespace

Scheduler::Scheduler(model::LlamaModel& model, const SchedulerOptions& options, const tokenizer::Tokenizer* tok)
    : model_(model),
      opt_(options),
      tok_(tok),
      cache_(model.kv_config(), options.num_blocks, options.block_size, options.kv_dtype),
      pool_(static_cast<int32_t>(options.num_blocks), static_cast<int32_t>(options.block_size)) {
  check(opt_.max_batch >= 1 && opt_.max_batch <= 32, "max_batch {} is not in 1..32", opt_.max_batch);
  check(opt_.block_size >= 1 && opt_.prefill_chunk >= 1, "block size and prefill chunk must be positive");
  check(!opt_.prefix_caching || opt_.prefill_chunk % opt_.block_size == 0,
        "with prefix caching the prefill chunk {} must be a multiple of the KV block size {}", opt_.prefill_chunk,
        opt_.block_size);
  check(opt_.position_offset >= 0, "position offset must not be negative");
  check(opt_.step_tokens >= 1, "the step token budget must be positive");
  check(opt_.max_seq_len >= 2 && opt_.position_offset + opt_.max_seq_len <= model.config().max_seq_len,
        "max_seq_len {} + position offset {} must be within 2..{} for {}", opt_.max_seq_len, opt_.position_offset,
        model.config().max_seq_len, model.config().name);
}

Scheduler::~Scheduler() = default;

void Scheduler::add(ScheduledRequest request) {
  auto seq = std::make_unique<Sequence>();
  seq->tokens = request.prompt;
  seq->result.prompt_tokens = static_cast<int64_t>(request.prompt.size());
  seq->req = std::move(request);
  waiting_.push_back(std::move(seq));
}

bool Scheduler::cancel(uint64_t id) {
  for (auto& s : running_) {
    if (s->req.id == id && !s->done) {
      finish(*s, StopReason::cancelled);
      remove_finished();
      return true;
    }
  }
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if ((*it)->req.id == id) {
      finish(**it, StopReason::cancelled);
      waiting_.erase(it);
      return true;
    }
  }
  return false;
}

void Scheduler::cancel_all() {
  for (auto& s : running_) finish(*s, StopReason::cancelled);
  for (auto& s : waiting_) finish(*s, StopReason::cancelled);
  running_.clear();
  waiting_.clear();
}

void Scheduler::fail_all(const std::string& error) {
  for (auto& s : running_) finish(*s, StopReason::error, error);
  for (auto& s : waiting_) finish(*s, StopReason::error, error);
  running_.clear();
  waiting_.clear();
}

void Scheduler::admit(std::unique_ptr<Sequence> seq) {
  Sequence& s = *seq;
  s.admitted = admissions_++;
  s.cached = 0;
  if (!s.sampler) s.sampler.emplace(s.req.sampling, s.req.sampler_stream);
  if (tok_ && !s.decoder) s.decoder.emplace(*tok_);
  s.started = false;
  running_.push_back(std::move(seq));
  if (!s.req.images.empty() && !s.images) {
    try {
      s.images = std::make_unique<model::CrossAttentionContext>(model_.image_context(s.req.images, s.req.prompt));
      s.req.images.clear();  // the pixels are not needed any more
      s.req.images.shrink_to_fit();
    } catch (const std::exception& e) {
      finish(s, StopReason::error, e.what());
    }
  }
}

void Scheduler::match_prefix(Sequence& s) {
  if (!opt_.prefix_caching || s.images) return;
  const int64_t bs = opt_.block_size;
  // At least the last token is computed: its logits are what the request needs next.
  const int64_t max_blocks = (static_cast<int64_t>(s.tokens.size()) - 1) / bs;
  uint64_t parent = 0;
  for (int64_t i = 0; i < max_blocks; ++i) {
    const auto block_tokens = std::span(s.tokens).subspan(static_cast<size_t>(i * bs), static_cast<size_t>(bs));
    const uint64_t h = prefix_block_hash(parent, block_tokens);
    const int32_t b = pool_.acquire_cached(h, parent, block_tokens);
    if (b < 0) break;
    s.blocks.push_back(b);
    s.hashes.push_back(h);
    parent = h;
  }
  // Keep whole prefill chunks only (see the header): the rest is computed as without a cache.
  // A request that asked for every cached block (a conversation's next turn) keeps them all.
  const size_t chunk_blocks = static_cast<size_t>(opt_.prefill_chunk / bs);
  const size_t keep = s.req.reuse_all_cached_blocks ? s.blocks.size() : s.blocks.size() / chunk_blocks * chunk_blocks;
  pool_.release(std::span(s.blocks).subspan(keep));
  s.blocks.resize(keep);
  s.hashes.resize(keep);
  s.cached = static_cast<int64_t>(keep) * bs;
}

void Scheduler::publish_full_blocks(Sequence& s) {
  if (!opt_.prefix_caching || s.images) return;
  const int64_t bs = opt_.block_size;
  const size_t full = static_cast<size_t>(s.cached / bs);
  while (s.hashes.size() < full) {
    const size_t i = s.hashes.size();
    const uint64_t parent = i == 0 ? 0 : s.hashes[i - 1];
    const auto block_tokens = std::span(s.tokens).subspan(i * static_cast<size_t>(bs), static_cast<size_t>(bs));
    const uint64_t h = prefix_block_hash(parent, block_tokens);
    pool_.publish(s.blocks[i], h, parent, block_tokens);
    s.hashes.push_back(h);
  }
}

void Scheduler::preempt(Sequence& s) {
  pool_.release(s.blocks);
  s.blocks.clear();
  s.hashes.clear();
  s.cached = 0;
  ++counters_.preemptions;
  ++s.result.preemptions;
  const auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == &s; });
  waiting_.push_front(std::move(*it));
  running_.erase(it);
}

bool Scheduler::reserve_blocks(std::vector<Sequence*>& planned, std::vector<int64_t>& counts) {
  const int64_t bs = opt_.block_size;
  int64_t needed = 0;
  for (size_t i = 0; i < planned.size(); ++i) {
    needed += (planned[i]->cached + counts[i] + bs - 1) / bs - static_cast<int64_t>(planned[i]->blocks.size());
  }
  if (needed <= pool_.available_blocks()) {
    for (size_t i = 0; i < planned.size(); ++i) {
      Sequence& s = *planned[i];
      while (static_cast<int64_t>(s.blocks.size()) * bs < s.cached + counts[i]) s.blocks.push_back(pool_.allocate());
    }
    return true;
  }
  Sequence* victim = nullptr;
  for (auto& s : running_) {
    if (!victim || s->admitted > victim->admitted) victim = s.get();
  }
  if (running_.size() == 1) {
    // Alone and still too big. Every block in use is then this request's (waiting requests hold
    // none): any other is held by no one, a leak, and the message says so rather than blaming
    // the request's size.
    const int64_t want = (victim->cached + counts[0] + bs - 1) / bs;
    const int64_t leaked = pool_.used_blocks() - static_cast<int64_t>(victim->blocks.size());
    finish(*victim, StopReason::error,
           fmt::format("out of KV blocks: the request needs {} blocks of {} tokens, the pool has {} ({} in use, {} "
                       "free){}",
                       want, bs, pool_.num_blocks(), pool_.used_blocks(), pool_.available_blocks(),
                       leaked > 0 ? fmt::format("; {} of them are held by no request (leaked blocks: a bug)", leaked)
                                  : std::string()));
    remove_finished();
  } else {
    preempt(*victim);
  }
  return false;
}

void Scheduler::step() {
  // Every step computes at least one token or ends at least one request (reserve_blocks fails a
  // request that cannot fit alone), so work that waits always moves. Checked, since a step that
  // did neither would be repeated forever by the engine's loop.
  const auto ended = [this] { return counters_.finished + counters_.cancelled + counters_.failed; };
  const int64_t ended_before = ended();
  const bool had_work = !idle();
  const bool computed = run_step();
  check(!had_work || computed || ended() != ended_before,
        "scheduler step made no progress: {} running, {} waiting, {} of {} KV blocks in use, {} free", running_.size(),
        waiting_.size(), pool_.used_blocks(), pool_.num_blocks(), pool_.available_blocks());
}

bool Scheduler::run_step() {
  const Timer timer;
  ++counters_.steps;
  while (static_cast<int>(running_.size()) < opt_.max_batch && !waiting_.empty()) {
    auto seq = std::move(waiting_.front());
    waiting_.pop_front();
    admit(std::move(seq));
  }
  remove_finished();  // requests whose images failed to encode
  std::vector<Sequence*> planned;
  std::vector<int64_t> counts;
  for (;;) {
    if (running_.empty()) return false;
    planned.clear();
    counts.clear();
    // Requests not started yet look for their prefix now rather than only at admission: one
    // admitted beside another with the same prefix finds the blocks that one has computed since.
    for (auto& s : running_) {
      if (!s->started && s->blocks.empty()) match_prefix(*s);
    }
    int64_t budget = opt_.step_tokens;
    // The original demo's static batches: every prompt of the batch is prefilled before anyone
    // decodes (so each decode iteration is a pure decode step).
    const bool prefilling = opt_.decode_waits_for_prefill &&
                            std::any_of(running_.begin(), running_.end(), [](const auto& s) {
                              return static_cast<int64_t>(s->tokens.size()) - s->cached > 1;
                            });
    for (auto& s : running_) {  // decoding requests first: one token each
      if (!prefilling && static_cast<int64_t>(s->tokens.size()) - s->cached == 1) {
        planned.push_back(s.get());
        counts.push_back(1);
        --budget;
      }
    }
    for (auto& s : running_) {  // then prefill chunks, oldest first, aligned to the chunk size
      const int64_t pending = static_cast<int64_t>(s->tokens.size()) - s->cached;
      if (pending <= 1) continue;
      const int64_t n = std::min(pending, opt_.prefill_chunk - s->cached % opt_.prefill_chunk);
      if (n > budget && !planned.empty()) break;
      planned.push_back(s.get());
      counts.push_back(n);
      budget -= n;
    }
    if (reserve_blocks(planned, counts)) break;
  }

  StepRecord record;
  record.step = counters_.steps - 1;
  std::vector<model::BatchItem> items;
  for (size_t i = 0; i < planned.size(); ++i) {
    Sequence& s = *planned[i];
    if (!s.started) {
      s.started = true;
      if (!s.ever_started) {
        s.ever_started = true;
        s.result.cached_prompt_tokens = std::min<int64_t>(s.cached, s.result.prompt_tokens);
        counters_.prompt_tokens += s.result.prompt_tokens;
        counters_.prompt_tokens_cached += s.result.cached_prompt_tokens;
      }
    }
    const bool decoding = static_cast<int64_t>(s.tokens.size()) - s.cached == 1;
    record.decode_tokens += decoding ? 1 : 0;
    record.prefill_tokens += decoding ? 0 : counts[i];
    items.push_back({std::span(s.tokens).subspan(static_cast<size_t>(s.cached), static_cast<size_t>(counts[i])),
                     s.cached, s.blocks, false, opt_.position_offset, s.images.get()});
  }
  record.kv_blocks_used = pool_.used_blocks();  // the step's peak: finishing requests release theirs below
  model_.set_logit_candidates(logit_candidates(planned, counts));
  try {
    model_.forward(items, cache_, logits_);
  } catch (const std::exception& e) {
    for (Sequence* s : planned) finish(*s, StopReason::error, e.what());
    remove_finished();
    return true;
  }
  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  for (size_t i = 0; i < planned.size(); ++i) {
    Sequence& s = *planned[i];
    s.cached += counts[i];
    publish_full_blocks(s);
    if (s.cached == static_cast<int64_t>(s.tokens.size())) {
      accept_token(s, std::span<const float>(logits_).subspan(i * vocab, vocab));
    }
  }
  remove_finished();
  if (observer_) {
    record.ms = timer.ms();
    record.running = static_cast<int>(running_.size());
    record.waiting = static_cast<int64_t>(waiting_.size());
    call_quietly(observer_, record);
  }
  return true;
}

int64_t Scheduler::logit_candidates(const std::vector<Sequence*>& planned, const std::vector<int64_t>& counts) const {
  if (opt_.check_finite) return 0;  // every value is checked
  int64_t k = 0;
  for (size_t i = 0; i < planned.size(); ++i) {
    const Sequence& s = *planned[i];
    if (s.cached + counts[i] != static_cast<int64_t>(s.tokens.size())) continue;  // no token this step
    const int64_t needed = s.sampler->candidates_needed();
    if (needed == 0 || s.req.top_logprobs >= 0) return 0;  // the whole row: no top_k, or log-softmax
    k = std::max(k, needed);
  }
  return k;
}

void Scheduler::accept_token(Sequence& s, std::span<const float> logits) {
  if (opt_.check_finite) {
    ++counters_.logits_checked;
    if (!kernels::all_finite(logits.data(), static_cast<int64_t>(logits.size()))) {
      ++counters_.logits_nonfinite;
      return finish(s, StopReason::error,
                    fmt::format("non-finite logits (NaN or Inf) at position {}", opt_.position_offset + s.cached - 1));
    }
  }
  int32_t token = 0;
  try {
    token = s.sampler->sample(logits);
  } catch (const std::exception& e) {
    return finish(s, StopReason::error, e.what());
  }
  ScheduledToken ev;
  ev.token = token;
  if (s.req.top_logprobs >= 0) {
    const std::vector<float> log_probs = log_softmax(logits);
    ev.has_logprob = true;
    ev.logprob = log_probs[static_cast<size_t>(token)];
    for (int32_t id : top_k_ids(logits, s.req.top_logprobs)) ev.top.emplace_back(id, log_probs[static_cast<size_t>(id)]);
  }
  s.tokens.push_back(token);
  ++s.generated;
  ++counters_.generated_tokens;
  if (s.generated == 1) s.result.ttft_ms = now_ms() - s.req.submit_ms;

  const bool is_stop = std::find(s.req.stop_tokens.begin(), s.req.stop_tokens.end(), token) != s.req.stop_tokens.end();
  const bool out_of_room =
      s.generated >= s.req.max_tokens || static_cast<int64_t>(s.tokens.size()) >= opt_.max_seq_len;
  if (s.decoder) {
    try {
      // A stop token's own text is not part of the reply; what the decoder held back is.
      ev.text = is_stop ? s.decoder->flush() : s.decoder->push(token);
      if (!is_stop && out_of_room) ev.text += s.decoder->flush();
    } catch (const std::exception& e) {
      return finish(s, StopReason::error, e.what());
    }
  }
  if (!is_stop || !ev.text.empty()) call_quietly(s.req.on_token, ev);
  if (is_stop) {
    s.result.stop_token = token;
    return finish(s, StopReason::stop);
  }
  if (out_of_room) return finish(s, StopReason::length);
}

void Scheduler::finish(Sequence& s, StopReason reason, const std::string& error) {
  if (s.done) return;
  s.done = true;
  pool_.release(s.blocks);
  s.blocks.clear();
  s.hashes.clear();
  s.result.reason = reason;
  s.result.error = error;
  s.result.completion_tokens = s.generated;
  s.result.total_ms = now_ms() - s.req.submit_ms;
  switch (reason) {
    case StopReason::stop:
    case StopReason::length: ++counters_.finished; break;
    case StopReason::cancelled: ++counters_.cancelled; break;
    case StopReason::error: ++counters_.failed; break;
  }
  call_quietly(s.req.on_done, s.result);
}

void Scheduler::remove_finished() {
  std::erase_if(running_, [](const auto& s) { return s->done; });
}

}  // namespace llama3::runtime

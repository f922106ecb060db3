// The public engine (include/llama3/engine.h): the model, the tokenizer and the scheduler, with
// one loop thread that runs scheduler steps while there is work and sleeps otherwise. Other
// threads only touch the queues below (under the mutex); the scheduler is the loop's alone.
#include "llama3/engine.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "model/model_factory.h"
#include "runtime/engine_plan.h"
#include "runtime/model_spec.h"
#include "runtime/rss.h"
#include "runtime/sampler.h"
#include "runtime/scheduler.h"
#include "runtime/tokenizer_location.h"
#include "tokenizer/chat_format.h"
#include "vision/image_decode.h"
#include "vision/image_preprocess.h"

namespace llama3 {

namespace {

// The model's end-of-turn tokens: <|end_of_text|>, <|eom_id|>, <|eot_id|>.
constexpr int32_t kEndOfTurnIds[] = {128001, 128008, 128009};
constexpr int kMaxTopLogprobs = 20;
// Images per request of a vision model. Each costs an encoder run and its cross-attention keys
// and values for the request's life (~420 MB for a 4-tile image on the 11B).
constexpr int kMaxImages = 4;

[[noreturn]] void invalid(const std::string& message) {
  throw EngineError(EngineError::Kind::invalid_request, message);
}

Completion to_completion(const runtime::ScheduledResult& r) {
  Completion c;
  switch (r.reason) {
    case runtime::StopReason::stop: c.reason = FinishReason::stop; break;
    case runtime::StopReason::length: c.reason = FinishReason::length; break;
    case runtime::StopReason::cancelled: c.reason = FinishReason::cancelled; break;
    case runtime::StopReason::error: c.reason = FinishReason::error; break;
  }
  c.error = r.error;
  c.prompt_tokens = r.prompt_tokens;
  c.cached_prompt_tokens = r.cached_prompt_tokens;
  c.completion_tokens = r.completion_tokens;
  c.ttft_ms = r.ttft_ms;
  c.total_ms = r.total_ms;
  c.preemptions = r.preemptions;
  c.stop_token = r.stop_token;
  return c;
}

}  // namespace

struct Engine::Impl {
  EngineOptions opt;
  model::OpenedModel opened;
  std::optional<tokenizer::Tokenizer> tok;
  std::string tokenizer_error;  // why there is no tokenizer (text prompts are refused)
  std::unique_ptr<runtime::Scheduler> sched;
  vision::VisionConfig vision;  // a vision model's tiles, for preprocessing images

  // The request's images decoded and preprocessed, after checking them against the prompt's
  // image tokens; throws EngineError (invalid_request).
  std::vector<vision::ImageTiles> prepare_images(const GenerationRequest& request,
                                                 const std::vector<int32_t>& prompt) const;
  ModelInfo info;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<runtime::ScheduledRequest> incoming;
  std::vector<uint64_t> cancels;
  bool stopping = false;
  uint64_t next_id = 1;
  int64_t outstanding = 0;  // accepted and not yet done (waiting or running)
  EngineMetrics snapshot;
  std::thread loop_thread;

  void loop();
  void update_snapshot();  // under mu
};

void Engine::Impl::update_snapshot() {
  const runtime::SchedulerCounters& c = sched->counters();
  snapshot.requests_waiting = sched->waiting();  // metrics() adds what has not reached it yet
  snapshot.requests_running = sched->running();
  snapshot.requests_finished = c.finished;
  snapshot.requests_cancelled = c.cancelled;
  snapshot.requests_failed = c.failed;
  snapshot.prompt_tokens = c.prompt_tokens;
  snapshot.prompt_tokens_cached = c.prompt_tokens_cached;
  snapshot.generated_tokens = c.generated_tokens;
  snapshot.preemptions = c.preemptions;
  snapshot.kv_blocks_total = sched->pool().num_blocks();
  snapshot.kv_blocks_used = sched->pool().used_blocks();
  snapshot.kv_blocks_cached = sched->pool().cached_blocks();
  snapshot.steps = c.steps;
  snapshot.logits_checked = c.logits_checked;
  snapshot.logits_nonfinite = c.logits_nonfinite;
}

void Engine::Impl::loop() {
  for (;;) {
    std::deque<runtime::ScheduledRequest> arrived;
    std::vector<uint64_t> cancelled;
    bool stop = false;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stopping || !incoming.empty() || !cancels.empty() || !sched->idle(); });
      arrived.swap(incoming);
      cancelled.swap(cancels);
      stop = stopping;
    }
    for (auto& r : arrived) sched->add(std::move(r));
    for (uint64_t id : cancelled) sched->cancel(id);
    if (stop) {
      sched->cancel_all();
      const std::lock_guard lock(mu);
      update_snapshot();
      return;
    }
    if (!sched->idle()) {
      try {
        sched->step();
      } catch (const std::exception& e) {
        // A bug (the scheduler's own checks): every request gets the error, the process lives.
        sched->fail_all(fmt::format("internal error: {}", e.what()));
      }
    }
    const std::lock_guard lock(mu);
    update_snapshot();
  }
}

MemoryPlanReport Engine::plan_memory(const EngineOptions& options) {
  try {
    const runtime::EnginePlan plan = runtime::plan_engine(options);
    MemoryPlanReport report{runtime::describe(plan.memory), plan.memory.fits(), ""};
    try {
      runtime::require_fits(plan.memory);
    } catch (const std::exception& e) {
      report.error = e.what();
    }
    return report;
  } catch (const EngineError&) {
    throw;
  } catch (const std::exception& e) {
    invalid(e.what());
  }
}

Engine::Engine(const EngineOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.opt = options;
  try {
    const runtime::EnginePlan plan = runtime::plan_engine(options);
    runtime::require_fits(plan.memory);
    const runtime::KvPoolPlan& pool = plan.pool;

    d.opened = model::open_model(plan.request);
    const model::ModelConfig& c = d.opened.model->config();
    try {
      d.tok.emplace(runtime::load_tokenizer(
          options.model.tokenizer ? std::optional<std::filesystem::path>(*options.model.tokenizer) : std::nullopt,
          d.opened.dir));
    } catch (const std::exception& e) {
      if (options.model.tokenizer) throw;  // asked for explicitly: its failure is the caller's error
      d.tokenizer_error = e.what();
    }
    runtime::SchedulerOptions so;
    so.max_batch = options.max_batch;
    so.max_seq_len = options.max_seq_len;
    // With prefix caching, chunks are whole blocks (hits are cut back to chunk boundaries).
    so.prefill_chunk = options.prefix_caching
                           ? std::max(pool.block_size, options.prefill_chunk / pool.block_size * pool.block_size)
                           : options.prefill_chunk;
    so.step_tokens = std::max<int64_t>(options.step_tokens, 1);
    so.prefix_caching = options.prefix_caching;
    so.block_size = pool.block_size;
    so.num_blocks = pool.num_blocks;
    so.kv_dtype = d.opened.precision.kv_cache;
    so.position_offset = options.position_offset;
    so.check_finite = options.check_finite;
    so.decode_waits_for_prefill = options.decode_waits_for_prefill;
    d.sched = std::make_unique<runtime::Scheduler>(*d.opened.model, so, d.tok ? &*d.tok : nullptr);
    if (options.on_step) {
      d.sched->set_step_observer([cb = options.on_step](const runtime::StepRecord& r) {
        cb(StepStats{r.step, r.ms, r.decode_tokens, r.prefill_tokens, r.running, r.waiting, r.kv_blocks_used});
      });
    }
    ModelInfo& info = d.info;
    info.name = c.name;
    info.n_layers = c.n_layers;
    info.vocab_size = c.vocab_size;
    info.max_seq_len = options.max_seq_len;
    info.weights = d.opened.weights;
    info.format = d.opened.format;
    info.optimizations = d.opened.precision.mode;
    info.precision = d.opened.precision.to_json();
    info.kv_cache = std::string(kernels::kv_dtype_name(d.opened.precision.kv_cache));
    info.kv_blocks = pool.num_blocks;
    info.kv_block_size = pool.block_size;
    info.kv_cache_bytes = d.sched->kv_cache_bytes();
    info.load_seconds = d.opened.load_seconds;
    info.weight_cache = d.opened.cache;
    info.vision = c.has_vision();
    info.image_token_id = c.has_vision() ? c.image_token_id() : -1;
    info.max_images = c.has_vision() ? kMaxImages : 0;
    d.vision = c.vision;
  } catch (const EngineError&) {
    throw;
  } catch (const std::exception& e) {
    invalid(e.what());
  }
  {
    const std::lock_guard lock(d.mu);
    d.update_snapshot();
  }
  d.loop_thread = std::thread([&d] { d.loop(); });
}

Engine::~Engine() {
  {
    const std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->loop_thread.joinable()) impl_->loop_thread.join();
}

std::vector<int32_t> Engine::encode_prompt(const GenerationRequest& r) const {
  const Impl& d = *impl_;
  const int given = static_cast<int>(!r.prompt_tokens.empty()) + static_cast<int>(r.prompt_text.has_value()) +
                    static_cast<int>(!r.messages.empty());
  if (given != 1) invalid("give the prompt as exactly one of: token ids, a text, chat messages");
  if (!r.prompt_tokens.empty()) return r.prompt_tokens;
  if (!d.tok) invalid("text prompts need a tokenizer: " + d.tokenizer_error);
  try {
    const auto image_token = static_cast<int32_t>(d.info.image_token_id);
    if (r.prompt_text) {
      if (!d.info.vision) return d.tok->encode(*r.prompt_text, true, false);
      return tokenizer::encode_prompt_with_images(*d.tok, *r.prompt_text, image_token, r.images.size());
    }
    std::vector<tokenizer::ChatMessage> dialog;
    for (const ChatMessage& m : r.messages) {
      if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "ipython" && m.role != "tool") {
        invalid("unknown chat role \"" + m.role + "\" (system, user, assistant, tool)");
      }
      dialog.push_back({m.role == "tool" ? "ipython" : m.role, m.content, m.images});
    }
    return tokenizer::encode_dialog(*d.tok, dialog, true, image_token);
  } catch (const EngineError&) {
    throw;
  } catch (const std::exception& e) {
    invalid(e.what());
  }
}

std::vector<vision::ImageTiles> Engine::Impl::prepare_images(const GenerationRequest& request,
                                                             const std::vector<int32_t>& prompt) const {
  const Impl& d = *this;
  if (!d.info.vision && !request.images.empty()) invalid(fmt::format("{} is a text-only model: it takes no images", d.info.name));
  const auto image_tokens = std::count(prompt.begin(), prompt.end(), static_cast<int32_t>(d.info.image_token_id));
  if (image_tokens != static_cast<int64_t>(request.images.size())) {
    invalid(fmt::format("the prompt has {} image tokens (<|image|>) for {} images: each image needs one", image_tokens,
                        request.images.size()));
  }
  if (static_cast<int64_t>(request.images.size()) > d.info.max_images) {
    invalid(fmt::format("{} images in one request; the model takes at most {}", request.images.size(), d.info.max_images));
  }
  std::vector<vision::ImageTiles> images;
  for (size_t i = 0; i < request.images.size(); ++i) {
    try {
      const std::string& bytes = request.images[i];
      const vision::RgbImage rgb = vision::decode_image(std::as_bytes(std::span(bytes.data(), bytes.size())),
                                                         fmt::format("image {}", i + 1));
      images.push_back(vision::preprocess_image(rgb, d.vision.tile_size, d.vision.max_tiles));
    } catch (const std::exception& e) {
      invalid(e.what());
    }
  }
  return images;
}

void Engine::check_images(const GenerationRequest& request) const {
  impl_->prepare_images(request, encode_prompt(request));
}

std::string Engine::decode(const std::vector<int32_t>& tokens) const {
  if (!impl_->tok) invalid("decoding needs a tokenizer: " + impl_->tokenizer_error);
  try {
    return impl_->tok->decode(tokens);
  } catch (const std::exception& e) {
    invalid(e.what());
  }
}

uint64_t Engine::submit(GenerationRequest request, RequestCallbacks callbacks) {
  Impl& d = *impl_;
  std::vector<int32_t> prompt = encode_prompt(request);
  const int64_t vocab = d.info.vocab_size;
  if (prompt.empty()) invalid("the prompt is empty");
  for (int32_t id : prompt) {
    if (id != d.info.image_token_id && (id < 0 || id >= vocab)) {
      invalid(fmt::format("token id {} is outside the vocabulary (0..{})", id, vocab - 1));
    }
  }
  std::vector<vision::ImageTiles> images = d.prepare_images(request, prompt);
  if (static_cast<int64_t>(prompt.size()) >= d.info.max_seq_len) {
    invalid(fmt::format("the prompt has {} tokens; the context is {} (prompt + at least one generated token)",
                        prompt.size(), d.info.max_seq_len));
  }
  const int64_t bs = d.sched->options().block_size;
  const int64_t blocks = static_cast<int64_t>(prompt.size()) / bs + 1;
  if (blocks > d.sched->options().num_blocks) {
    invalid(fmt::format("the prompt needs {} KV blocks of {} tokens; the pool has {}", blocks, bs,
                        d.sched->options().num_blocks));
  }
  if (request.max_tokens < 1) invalid(fmt::format("max_tokens must be at least 1 (got {})", request.max_tokens));
  if (request.top_logprobs > kMaxTopLogprobs) {
    invalid(fmt::format("top_logprobs must be within 0..{} (got {})", kMaxTopLogprobs, request.top_logprobs));
  }
  runtime::SamplingParams sp{request.sampling.temperature, request.sampling.top_p, request.sampling.top_k,
                             request.sampling.seed};
  try {
    runtime::validate_sampling_params(sp);
  } catch (const std::exception& e) {
    invalid(e.what());
  }
  for (int32_t id : request.stop_tokens) {
    if (id < 0 || id >= vocab) invalid(fmt::format("stop token id {} is outside the vocabulary", id));
  }

  runtime::ScheduledRequest r;
  r.prompt = std::move(prompt);
  r.sampling = sp;
  r.sampler_stream = request.sampler_stream;
  r.max_tokens = request.max_tokens;
  r.stop_tokens = request.stop_tokens;
  if (!request.ignore_eos) r.stop_tokens.insert(r.stop_tokens.end(), std::begin(kEndOfTurnIds), std::end(kEndOfTurnIds));
  r.top_logprobs = request.top_logprobs;
  r.reuse_all_cached_blocks = request.reuse_all_cached_blocks;
  r.images = std::move(images);
  if (callbacks.on_token) {
    r.on_token = [cb = std::move(callbacks.on_token)](const runtime::ScheduledToken& t) {
      TokenEvent ev;
      ev.token = t.token;
      ev.text = t.text;
      if (t.has_logprob) ev.logprob = TokenLogprob{t.token, t.logprob};
      for (const auto& [id, lp] : t.top) ev.top_logprobs.push_back({id, lp});
      cb(ev);
    };
  }
  r.on_done = [&d, cb = std::move(callbacks.on_done)](const runtime::ScheduledResult& res) {
    {
      // Called on the loop thread inside a step: the metrics a caller reads once it has seen
      // this completion must already count it (a client that gets its answer and then asks
      // /metrics), so the snapshot is brought up to date here, not only after the step.
      const std::lock_guard lock(d.mu);
      --d.outstanding;
      d.update_snapshot();
    }
    if (cb) cb(to_completion(res));
  };
  uint64_t id = 0;
  {
    const std::lock_guard lock(d.mu);
    if (d.stopping) throw EngineError(EngineError::Kind::shutting_down, "the engine is shutting down");
    // max_queue counts the requests that wait beyond the running batch's max_batch slots.
    if (d.outstanding >= d.opt.max_batch + d.opt.max_queue) {
      throw EngineError(EngineError::Kind::queue_full,
                        fmt::format("the queue is full ({} requests waiting)", d.outstanding - d.opt.max_batch));
    }
    ++d.outstanding;
    id = d.next_id++;
    r.id = id;
    r.submit_ms = d.sched->now_ms();
    d.incoming.push_back(std::move(r));
  }
  d.cv.notify_all();
  return id;
}

void Engine::cancel(uint64_t id) {
  {
    const std::lock_guard lock(impl_->mu);
    impl_->cancels.push_back(id);
  }
  impl_->cv.notify_all();
}

EngineMetrics Engine::metrics() const {
  const std::lock_guard lock(impl_->mu);
  EngineMetrics m = impl_->snapshot;
  m.requests_waiting += static_cast<int64_t>(impl_->incoming.size());
  return m;
}

const ModelInfo& Engine::model_info() const { return impl_->info; }

}  // namespace llama3

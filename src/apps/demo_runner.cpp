#include "apps/demo_runner.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "core/error.h"
#include "runtime/rss.h"

namespace llama3::apps {

namespace {

std::string quoted_piece(const std::string& text) {
  std::string out;
  for (char ch : text) out += ch == '\n' ? std::string("\\n") : std::string(1, ch);
  return out;
}

}  // namespace

DemoRunner::DemoRunner(DemoSchedule schedule, DemoRun& run)
    : schedule_(std::move(schedule)), run_(run) {}

void DemoRunner::on_step(const StepStats& step) {
  DemoStats& s = run_.stats;
  s.prefill_tokens += step.prefill_tokens;
  if (step.prefill_tokens > 0) s.prefill_seconds += step.ms / 1e3;
  if (step.decode_tokens > 0 && step.prefill_tokens == 0) {
    s.decode_tokens += step.decode_tokens;
    s.decode_seconds += step.ms / 1e3;
  }
  s.peak_blocks = std::max(s.peak_blocks, step.kv_blocks_used);
  {
    const std::lock_guard lock(progress_mu_);
    if (prefill_progress_) {
      prefill_progress_->advance(static_cast<double>(step.prefill_tokens));
      if (step.decode_tokens > 0) prefill_progress_.reset();  // finished before the iteration lines
    }
  }
  if (step.decode_tokens == 0) return;  // the batch's prompts only: not a decode iteration

  const DemoIteration it{static_cast<int64_t>(run_.iterations.size()), step.ms, step.decode_tokens,
                         step.prefill_tokens};
  run_.iterations.push_back(it);
  if (it.iteration == 0) {
    rss_first_iteration_ = runtime::current_rss_bytes();
    since_first_iteration_.reset();
  }
  if (it.iteration % kRssSampleEvery == 0) {
    run_.rss_samples.push_back({it.iteration, since_first_iteration_.seconds(), runtime::current_rss_bytes()});
  }
  fmt::print("Iteration {}: {:.0f}ms @ {:.1f} tok/s/user ({:.1f} tok/s throughput)", it.iteration, it.ms,
             1000.0 / it.ms, 1000.0 * it.active_users / it.ms);
  if (it.prefill_tokens > 0) fmt::print(" [+{} prompt tokens]", it.prefill_tokens);
  if (schedule_.stress_test) {
    // The stress test's progress rides on its iteration lines (a bar would tear them apart).
    stress_tokens_done_ += step.decode_tokens;
    const double t = since_first_iteration_.seconds();
    const double left = stress_tokens_done_ > 0 ? t * static_cast<double>(stress_tokens_total_ - stress_tokens_done_) /
                                                      static_cast<double>(stress_tokens_done_)
                                                : 0.0;
    fmt::print(" [stress {:.1f}%, ~{:.0f} s left]",
               100.0 * static_cast<double>(stress_tokens_done_) / static_cast<double>(stress_tokens_total_), left);
  }
  for (auto& [user, text] : pending_) {
    if (!text.empty()) fmt::print("  user {}: \"{}\"", user, quoted_piece(text));
    text.clear();
  }
  fmt::print("\n");
  std::fflush(stdout);  // a line per iteration also when stdout is a file or a pipe (tail -f, tee)
}

void DemoRunner::submit(Engine& engine, size_t u) {
  DemoUser& user = run_.users[u];
  UserState& st = state_[u];
  GenerationRequest req;
  req.prompt_tokens = user.prompt_tokens;
  req.images = user.images;
  req.sampling = schedule_.sampling;
  // The user's own random stream (a new one per recycle): its text does not depend on the batch,
  // nor on which data-parallel group runs it.
  const uint64_t all_users = std::max<uint64_t>(schedule_.total_users, run_.users.size());
  req.sampler_stream = user.id + static_cast<uint64_t>(st.rounds) * all_users;
  req.max_tokens = schedule_.max_generated_tokens - static_cast<int64_t>(user.result.generated.size());
  ++st.rounds;
  st.round_tokens = 0;
  const bool show = schedule_.print_all_users || u == runnable_.front();
  RequestCallbacks cb;
  cb.on_token = [this, u, show](const TokenEvent& ev) {
    run_.users[u].result.generated.push_back(ev.token);
    ++state_[u].round_tokens;
    if (show) pending_[u] += ev.text;
  };
  cb.on_done = [this, u](const Completion& done) {
    {
      const std::lock_guard lock(mu_);
      done_.emplace_back(u, done);
    }
    cv_.notify_one();
  };
  in_flight_[u] = engine.submit(std::move(req), std::move(cb));
}

bool DemoRunner::finish_round(size_t u, const Completion& done) {
  DemoUser& user = run_.users[u];
  DemoUserResult& r = user.result;
  in_flight_.erase(u);
  if (interrupted_ && done.reason == FinishReason::cancelled) {
    r.preemptions += done.preemptions;
    if (state_[u].rounds == 1 && done.completion_tokens > 0) r.ttft_ms = done.ttft_ms;
    r.stop_reason = "interrupted";
    return false;
  }
  check(done.reason == FinishReason::stop || done.reason == FinishReason::length, "user {}: {}", u,
        done.reason == FinishReason::error ? done.error : std::string("cancelled"));
  // The stop token reaches on_token only when it completes some text: keep every id.
  if (done.stop_token && state_[u].round_tokens < done.completion_tokens) r.generated.push_back(*done.stop_token);
  if (state_[u].rounds == 1) r.ttft_ms = done.ttft_ms;
  r.preemptions += done.preemptions;
  const bool all_generated = static_cast<int64_t>(r.generated.size()) >= schedule_.max_generated_tokens;
  if (schedule_.stress_test && !all_generated) {
    // A round that ended on its own just as the signal came would have been recycled: the
    // signal cut this user short as much as the ones it cancelled mid-round.
    if (interrupted_) {
      r.stop_reason = "interrupted";
      return false;
    }
    ++r.recycles;
    return true;
  }
  r.stop_reason = all_generated ? "max_generated_tokens" : done.reason == FinishReason::stop ? "stop_token" : "max_seq_len";
  return false;
}

void DemoRunner::run(Engine& engine) {
  state_.assign(run_.users.size(), UserState{});
  runnable_.clear();
  for (size_t u = 0; u < run_.users.size(); ++u) {
    if (run_.users[u].error.empty()) runnable_.push_back(u);
  }
  check(!runnable_.empty(), "no user can run: every prompt failed (see the errors above)");
  // Static batches: consecutive runnable users, one batch at a time; continuous: all at once.
  const size_t batch = schedule_.continuous_batching ? runnable_.size() : static_cast<size_t>(schedule_.batch_size);
  stress_tokens_total_ = static_cast<int64_t>(runnable_.size()) * schedule_.max_generated_tokens;
  for (size_t first = 0; first < runnable_.size(); first += batch) {
    const size_t last = std::min(runnable_.size(), first + batch);
    int64_t prompt_tokens = 0;
    for (size_t i = first; i < last; ++i) prompt_tokens += static_cast<int64_t>(run_.users[runnable_[i]].prompt_tokens.size());
    {
      // The previous batch's last step may still be in on_step.
      const std::lock_guard lock(progress_mu_);
      prefill_progress_ = std::make_unique<Progress>("prefill", static_cast<double>(prompt_tokens), "tokens");
    }
    for (size_t i = first; i < last; ++i) submit(engine, runnable_[i]);
    size_t outstanding = last - first;
    while (outstanding > 0) {
      std::pair<size_t, Completion> done;
      {
        std::unique_lock lock(mu_);
        // Woken by completions, or after 50 ms; looks at the stop signal each time round, not
        // only when no completion came for 50 ms: a stress run whose rounds end every few
        // milliseconds would otherwise never see it.
        do {
          if (!interrupted_ && stop_signal_ && stop_signal_->load() != 0) {
            interrupted_ = true;
            run_.interrupted = stop_signal_->load() == SIGINT ? "SIGINT" : "SIGTERM";
            for (const auto& [user, id] : in_flight_) engine.cancel(id);
          }
        } while (!cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return !done_.empty(); }));
        done = std::move(done_.front());
        done_.pop_front();
      }
      if (finish_round(done.first, done.second)) {
        submit(engine, done.first);
      } else {
        --outstanding;
      }
    }
    if (interrupted_) break;  // later batches are not started
  }
  if (interrupted_) {
    for (size_t u : runnable_) {
      if (run_.users[u].result.stop_reason.empty()) run_.users[u].result.stop_reason = "not started (interrupted)";
    }
  }
  // The engine brings its snapshot up to date before each completion's callback (blocks released,
  // checks counted), so after the last user's it holds the end figures.
  const EngineMetrics m = engine.metrics();
  run_.stats.preemptions = m.preemptions;
  run_.stats.blocks_used_end = m.kv_blocks_used;
  run_.stats.logits_checked = m.logits_checked;
  run_.stats.logits_nonfinite = m.logits_nonfinite;
  rss_at_end_ = runtime::current_rss_bytes();  // the model and the KV pool still in place
}

void DemoRunner::finish() {
  // The engine has stopped: the memory measured when the last user finished closes the series.
  const std::lock_guard lock(progress_mu_);
  prefill_progress_.reset();
  if (!run_.iterations.empty() && (run_.rss_samples.empty() || run_.rss_samples.back().iteration != run_.iterations.back().iteration)) {
    run_.rss_samples.push_back({run_.iterations.back().iteration, since_first_iteration_.seconds(), rss_at_end_});
  }
}

}  // namespace llama3::apps

#pragma once
// The demo's users run through the public engine (llama3/engine.h), as a server's clients would:
// static batches (the original demo: a batch is submitted together and the next one only when
// its last user has finished) or continuous batching (every user is submitted at once; a finished
// user's slot takes the next waiting one at the engine's next step). In stress mode a user whose
// context fills up (or who stops) is submitted again with its prompt, a recycle, until it has
// generated max_generated_tokens in all; memory stays bounded and every logit row is checked for
// NaN/Inf.
//
// The engine calls back on its own thread: the token and step callbacks below touch only the
// runner's per-user state and the iteration lines; the calling thread waits for completions and
// submits the next work.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "apps/demo_report.h"
#include "core/progress.h"
#include "core/timer.h"
#include "llama3/engine.h"

namespace llama3::apps {

struct DemoSchedule {
  int batch_size = 32;
  bool continuous_batching = false;
  bool stress_test = false;
  int64_t max_generated_tokens = 100;
  SamplingOptions sampling;
  bool print_all_users = false;  // else only the first runnable user's text in the iteration lines
  size_t total_users = 0;        // of the whole run, every data-parallel group's (DemoUser::id)
};

class DemoRunner {
 public:
  // Fills `run` (its users are added before run() is called).
  DemoRunner(DemoSchedule schedule, DemoRun& run);

  // Pass as EngineOptions::on_step before the engine is built.
  void on_step(const StepStats& step);

  // Runs every user without an error to the end; fills run.users[*].result, run.iterations,
  // run.stats (except the KV pool's size). Throws if a request fails (e.g. non-finite logits).
  // The step callbacks may still be running when it returns: read run.iterations, run.stats and
  // rss_after_first_iteration() once the engine is destroyed.
  void run(Engine& engine);

  // Once the engine is destroyed: closes the progress line and the RSS series.
  void finish();

  // A signal number set asynchronously (SIGINT/SIGTERM): when it becomes non-zero, run() cancels
  // the users in flight, submits nothing more and returns; their stop_reason is "interrupted" and
  // run.interrupted names the signal.
  void set_stop_signal(const std::atomic<int>* signal) { stop_signal_ = signal; }

  // RSS when the first decode iteration ended, and when the last user finished (the model and
  // the KV pool in place both times).
  size_t rss_after_first_iteration() const { return rss_first_iteration_; }
  size_t rss_at_end() const { return rss_at_end_; }

 private:
  struct UserState {
    int64_t rounds = 0;        // submissions so far (1 + recycles)
    int64_t round_tokens = 0;  // on_token calls in the current round
  };
  void submit(Engine& engine, size_t user);
  // Accounts a finished round; returns true if the user must be submitted again (stress).
  bool finish_round(size_t user, const Completion& done);

  DemoSchedule schedule_;
  DemoRun& run_;
  std::vector<size_t> runnable_;  // users without an error, in order
  std::vector<UserState> state_;  // per user
  std::map<size_t, std::string> pending_;  // text since the last iteration line, per user
  size_t rss_first_iteration_ = 0;
  size_t rss_at_end_ = 0;
  Timer since_first_iteration_;
  // A batch's prompts until its first decode iteration (a long prompt takes minutes).
  std::mutex progress_mu_;  // the step callback and the submitting thread both touch it
  std::unique_ptr<Progress> prefill_progress_;
  int64_t stress_tokens_total_ = 0;  // stress mode: every user's max_generated_tokens
  int64_t stress_tokens_done_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<size_t, Completion>> done_;
  std::map<size_t, uint64_t> in_flight_;  // user -> request id (the submitting thread's alone)
  const std::atomic<int>* stop_signal_ = nullptr;
  bool interrupted_ = false;
};

}  // namespace llama3::apps

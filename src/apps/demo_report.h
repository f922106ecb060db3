#pragma once
// What the demo measured, printed as a summary and written as the --report JSON.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace llama3::apps {

struct DemoUserResult {
  std::vector<int32_t> generated;  // every token, across recycles in stress mode
  std::string stop_reason;         // stop_token | max_generated_tokens | max_seq_len | interrupted | not started (interrupted)
  double ttft_ms = 0.0;            // from the start of its batch (or of the run) to its first token
  int64_t preemptions = 0;
  int64_t recycles = 0;  // stress mode: times its context filled up (or it stopped) and it started again
};

// One decode iteration: a scheduler step in which users advanced a token (it may also have
// prefilled a newcomer's prompt chunk, counted in prefill_tokens).
struct DemoIteration {
  int64_t iteration = 0;
  double ms = 0.0;
  int active_users = 0;
  int64_t prefill_tokens = 0;
};

struct DemoStats {
  int64_t prefill_tokens = 0;
  double prefill_seconds = 0.0;  // steps that prefilled (decode tokens riding along included)
  int64_t decode_tokens = 0;     // in decode-only steps
  double decode_seconds = 0.0;
  int64_t peak_blocks = 0;
  int64_t total_blocks = 0;
  int64_t preemptions = 0;
  int64_t blocks_used_end = 0;   // KV blocks still held when every user is done: 0, or a leak
  int64_t logits_checked = 0;    // stress mode: rows of logits checked for NaN/Inf
  int64_t logits_nonfinite = 0;  // and those holding one (each failed its user)
  size_t kv_bytes = 0;
};

struct DemoUser {
  size_t id = 0;  // its index among all the run's users (every data-parallel group's)
  size_t prompt_index = 0;
  std::string prompt;  // the text given to the tokenizer (context + prompt)
  std::vector<int32_t> prompt_tokens;
  std::vector<std::string> images;  // a vision model's image file (the prompt's "image"), sent with each request
  std::string text;    // decoded output
  std::string error;   // non-empty: this user could not run (e.g. its context URL failed)
  DemoUserResult result;
};

// Process memory at an iteration (every kRssSampleEvery iterations, and the last).
struct RssSample {
  int64_t iteration = 0;
  double seconds = 0.0;  // since the first iteration
  size_t rss_bytes = 0;
};
inline constexpr int64_t kRssSampleEvery = 64;

struct DemoRun {
  nlohmann::json config;  // model, weights, layers, batch, threads, mode, ...
  double load_seconds = 0.0;
  std::string weight_cache;  // what the weight cache did (model_factory.h)
  std::vector<DemoUser> users;
  std::vector<DemoIteration> iterations;
  std::vector<RssSample> rss_samples;
  DemoStats stats;
  size_t rss_start = 0, rss_end = 0, peak_rss = 0;
  bool stress_test = false;
  std::string interrupted;  // "SIGINT" / "SIGTERM" when a signal stopped the run early
};

// tokens/s/user of each iteration (1000 / ms).
std::vector<double> per_iteration_tsu(const std::vector<DemoIteration>& iterations);

nlohmann::json summary_json(const DemoRun& run);
nlohmann::json report_json(const DemoRun& run);
void print_summary(const DemoRun& run);

}  // namespace llama3::apps

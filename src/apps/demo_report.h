#pragma once
// What the demo measured, printed as a summary and written as the --report JSON.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "runtime/batch_generator.h"

namespace llama3::apps {

struct DemoUser {
  size_t prompt_index = 0;
  std::string prompt;  // the text given to the tokenizer (context + prompt)
  std::vector<int32_t> prompt_tokens;
  std::string text;    // decoded output
  std::string error;   // non-empty: this user could not run (e.g. its context URL failed)
  runtime::UserResult result;
};

struct DemoRun {
  nlohmann::json config;  // model, weights, layers, batch, threads, mode, ...
  double load_seconds = 0.0;
  std::string weight_cache;  // what the weight cache did (model_factory.h)
  std::vector<DemoUser> users;
  std::vector<runtime::IterationStat> iterations;
  runtime::GenerationStats stats;
  size_t rss_start = 0, rss_end = 0, peak_rss = 0;
  bool stress_test = false;
};

// tokens/s/user of each iteration (1000 / ms).
std::vector<double> per_iteration_tsu(const std::vector<runtime::IterationStat>& iterations);

nlohmann::json summary_json(const DemoRun& run);
nlohmann::json report_json(const DemoRun& run);
void print_summary(const DemoRun& run);

}  // namespace llama3::apps

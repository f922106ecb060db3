#pragma once
// The demo's command line, with the original Llama 3 demo's parameter names.
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "apps/cli_options.h"

namespace llama3::apps {

struct DemoOptions {
  ModelOptions model;
  std::optional<std::string> input_prompts;  // default: demo/prompts/questions_128.json
  bool instruct = true;
  int repeat_batches = 1;
  int64_t max_seq_len = 1024;
  int batch_size = 32;
  int64_t max_generated_tokens = 100;
  bool paged_attention = true;
  // Unset: blocks of 32, as many as --kv_memory holds (capped at the batch at max_seq_len).
  std::optional<std::string> page_params;
  std::optional<double> kv_memory;  // GiB; unset: what fits beside the weights, with a margin
  std::string sampling_params = R"({"temperature":0.6,"top_p":0.9,"top_k":32,"seed":42})";
  bool stress_test = false;
  int64_t start_pos = 0;
  std::optional<std::string> fake_device;  // overrides --mesh
  std::optional<std::string> report;
  std::optional<std::string> tokenizer;
  bool print_all_users = false;
  bool continuous_batching = false;
  bool tsu_check = false;
  std::optional<std::string> tsu_targets;  // default: demo/tsu_targets.json
  int64_t prefill_chunk = 256;
  int64_t step_tokens = 0;  // 0: prefill_chunk
  bool prefix_caching = false;

  void add_to(CLI::App& app);
};

}  // namespace llama3::apps

#pragma once
// Options shared by the commands that run a model, and their translation to a ModelRequest.
#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "llama3/engine.h"
#include "model/model_factory.h"

namespace llama3::apps {

struct ModelOptions {
  std::string model = "Llama-3.2-1B";
  std::optional<std::string> weights;
  std::optional<int64_t> layers;
  std::optional<std::string> model_dir;
  uint64_t seed = 0;
  int threads = 0;  // 0: all cores
  std::optional<std::string> kv_cache;
  std::optional<std::string> optimizations;
  std::optional<std::string> precision;
  std::string weight_cache = "on";
  std::string mesh = "N150";  // the weight cache's folder (the demo's --FAKE_DEVICE)

  void add_to(CLI::App& app);
  model::ModelRequest request() const;
  // The same options as the engine API takes them.
  ModelSpec spec(const std::optional<std::string>& tokenizer) const;
  void apply_threads() const;
};

// "1,2,3" or "[1, 2, 3]" -> ids; throws naming the bad item.
std::vector<int32_t> parse_token_list(const std::string& text);

}  // namespace llama3::apps

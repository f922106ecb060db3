#pragma once
// Options shared by the commands that run a model, and their translation to a ModelRequest.
#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "llama3/engine.h"
#include "model/model_factory.h"
#include "runtime/memory_plan.h"

namespace llama3::apps {

// The mesh the parsed command line asks for (--mesh, or the demo's --FAKE_DEVICE, which wins):
// main reads it on every rank of an MPI job, before any command runs, to know each rank's role.
struct CommandLineMesh {
  std::optional<std::string> mesh, fake_device;
  std::string effective() const { return fake_device.value_or(mesh.value_or("N150")); }
};
CommandLineMesh& command_line_mesh();

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
  std::string mesh_payload = "fp32";  // --mesh_payload
  std::string mesh = "N150";  // --mesh (the demo's --FAKE_DEVICE): ranks, and the weight cache's folder
  std::optional<double> memory_limit;  // GiB to plan against instead of what the machine has
  bool dry_run = false;                // print the memory plan, load nothing

  void add_to(CLI::App& app);
  model::ModelRequest request() const;
  // The same options as the engine API takes them.
  ModelSpec spec(const std::optional<std::string>& tokenizer) const;
  void apply_threads() const;

  // The memory plan, before anything is loaded. Commands on the engine: sets the engine's limit
  // and, with --dry_run, prints the engine's plan. Others: `shape` says what the command
  // allocates beside the weights; a plan that does not fit is refused here. Both return false
  // after a dry run (the command stops) and throw the plan's one-line error when it does not fit.
  bool settle_memory(EngineOptions& engine) const;
  bool settle_memory(const std::function<runtime::RunShape(const model::ModelPlan&)>& shape) const;
};

// "1,2,3" or "[1, 2, 3]" -> ids; throws naming the bad item.
std::vector<int32_t> parse_token_list(const std::string& text);

}  // namespace llama3::apps

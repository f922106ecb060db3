// `llama3 plan`: the memory a run would need (weights in the chosen mode, the KV pool, the
// activations, the runtime) against what this machine has, without loading anything. The same
// plan the engine enforces when it starts (and that `--dry_run` prints for each command).
#include <fmt/core.h>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "core/error.h"

namespace llama3::apps {
namespace {

struct PlanOptions {
  ModelOptions model;
  EngineOptions engine;
};

int run_plan(const PlanOptions& o) {
  EngineOptions eo = o.engine;
  eo.model = o.model.spec(std::nullopt);
  eo.memory_limit_gb = o.model.memory_limit;
  const MemoryPlanReport report = Engine::plan_memory(eo);
  fmt::print("{}", report.text);
  check(report.fits, "{}", report.error);
  return 0;
}

const CommandRegistrar registrar{
    "plan", "print the memory a run needs (weights, KV cache, activations) against what is available; load nothing",
    [](CLI::App& app) {
      auto o = std::make_shared<PlanOptions>();
      o->model.add_to(app);
      o->engine.max_batch = 32;
      o->engine.max_seq_len = 8192;
      app.add_option("--batch_size", o->engine.max_batch, "users decoded together")
          ->check(CLI::Range(1, 32))
          ->capture_default_str();
      app.add_option("--max_seq_len", o->engine.max_seq_len, "context length per user")->capture_default_str();
      app.add_option("--prefill_chunk", o->engine.prefill_chunk, "prompt tokens per forward pass")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--kv_memory", o->engine.kv_memory_gb,
                     "GiB for the KV pool (default: what fits beside the weights with a margin, at most the "
                     "batch at max_seq_len)")
          ->check(CLI::PositiveNumber);
      return [o] { return run_plan(*o); };
    }};

}  // namespace
}  // namespace llama3::apps

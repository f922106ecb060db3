#include "apps/cli_options.h"

#include <fmt/core.h>

#include <charconv>

#include "core/error.h"
#include "core/parallel.h"
#include "dist/mesh.h"
#include "model/model_config.h"
#include "runtime/model_spec.h"

namespace llama3::apps {

void ModelOptions::add_to(CLI::App& app) {
  app.add_option("--model", model, "preset for random weights")
      ->check(CLI::IsMember(model::preset_names()))
      ->capture_default_str();
  app.add_option("--weights", weights,
                 "random | instruct | general (default: the checkpoint in LLAMA_DIR/HF_MODEL/--model_dir "
                 "if set, else random)")
      ->check(CLI::IsMember({"random", "instruct", "general"}));
  app.add_option("--layers", layers, "keep only the first N layers")->check(CLI::PositiveNumber);
  app.add_option("--model_dir", model_dir, "checkpoint folder (Meta or Hugging Face); overrides LLAMA_DIR/HF_MODEL");
  app.add_option("--seed_weights", seed, "seed of the random weights")->capture_default_str();
  app.add_option("--threads", threads,
                 "worker threads, on every rank of a mesh (0: the cores this process may use, shared with the "
                 "ranks on its host)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--kv_cache", kv_cache, "KV cache precision: bf16 (default) | f32 | q8 (8-bit, a scale per head row)")
      ->check(CLI::IsMember({"bf16", "f32", "q8"}));
  app.add_option("--optimizations", optimizations,
                 "weight formats: performance (4-bit MLP w1/w3, 8-bit rest) | accuracy (8-bit) | bf16 | native "
                 "(as stored); default: native for GGUF files, performance otherwise")
      ->check(CLI::IsMember({"performance", "accuracy", "bf16", "native"}));
  app.add_option("--precision", precision,
                 "per-matrix overrides as JSON, e.g. {\"ff1_3\":\"q4\",\"ff2\":\"q8\",\"wqkv\":\"q8\",\"wo\":\"q8\","
                 "\"lm_head\":\"q8\",\"kv_cache\":\"bf16\"} (values bf16|q8|q4|native)");
  app.add_option("--weight_cache", weight_cache, "on: convert once, then map the cache | off")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--mesh", mesh,
                 "N150 | N300 | T3K | TG or TxD (e.g. 2x1): with more than one rank, run under `mpirun -np T` and "
                 "every rank holds 1/T of the model (tensor parallel); also names the weight cache's folder")
      ->check([](const std::string& text) {
        try {
          dist::parse_mesh(text);
          return std::string();
        } catch (const std::exception& e) {
          return std::string(e.what());
        }
      })
      ->each([](const std::string& text) { command_line_mesh().mesh = text; })
      ->capture_default_str();
  app.add_option("--mesh_payload", mesh_payload,
                 "the all-reduces' payload on a mesh: fp32, or bf16 (half the bytes; sums rounded to bf16)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_option("--memory_limit", memory_limit,
                 "GiB the run may use (default: MemAvailable, lowered to the cgroup's limit); a run whose "
                 "memory plan exceeds it is refused before loading")
      ->check(CLI::PositiveNumber);
  app.add_flag("--dry_run", dry_run, "print the memory plan (weights, KV cache, activations) and load nothing");
}

bool ModelOptions::settle_memory(EngineOptions& engine) const {
  engine.memory_limit_gb = memory_limit;
  if (!dry_run) return true;  // the engine checks its plan itself
  const MemoryPlanReport report = Engine::plan_memory(engine);
  fmt::print("{}", report.text);
  check(report.fits, "{}", report.error);
  return false;
}

bool ModelOptions::settle_memory(const std::function<runtime::RunShape(const model::ModelPlan&)>& shape) const {
  const model::ModelRequest r = request();
  const model::ModelPlan plan = model::plan_model(r);
  const runtime::MemoryPlan memory =
      runtime::plan_memory(r, plan, shape(plan), runtime::detect_memory_limit(memory_limit));
  if (dry_run) fmt::print("{}", runtime::describe(memory));
  runtime::require_fits(memory);
  return !dry_run;
}

model::ModelRequest ModelOptions::request() const {
  return runtime::model_request(spec(std::nullopt));
}

ModelSpec ModelOptions::spec(const std::optional<std::string>& tokenizer) const {
  ModelSpec s;
  s.preset = model;
  s.weights = weights;
  s.model_dir = model_dir;
  s.layers = layers;
  s.seed = seed;
  s.optimizations = optimizations;
  s.precision = precision;
  s.kv_cache = kv_cache;
  s.weight_cache = weight_cache == "on";
  s.tokenizer = tokenizer;
  s.mesh = mesh;
  s.mesh_payload = mesh_payload;
  s.threads = threads;  // a mesh's other ranks run as many as rank 0
  return s;
}

CommandLineMesh& command_line_mesh() {
  static CommandLineMesh m;
  return m;
}

void ModelOptions::apply_threads() const {
  if (threads > 0) set_thread_count(threads);
}

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '[' || text[i] == ']' || text[i] == ',' ||
                               text[i] == '\n' || text[i] == '\t'))
      ++i;
  };
  skip();
  while (i < text.size()) {
    int64_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), value);
    const size_t used = static_cast<size_t>(ptr - (text.data() + i));
    check(ec == std::errc() && used > 0 && value >= 0 && value <= INT32_MAX,
          "bad token id \"{}\" in token list (expected comma-separated non-negative integers)",
          text.substr(i, text.find(',', i) - i));
    ids.push_back(static_cast<int32_t>(value));
    i += used;
    check(i == text.size() || text[i] == ',' || text[i] == ' ' || text[i] == ']',
          "bad token list near \"{}\"", text.substr(i, 10));
    skip();
  }
  return ids;
}

}  // namespace llama3::apps

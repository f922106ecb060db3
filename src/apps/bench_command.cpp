// `llama3 bench`: decode-step time of a model at several batch sizes, against the machine's
// memory-bandwidth roofline measured in the same run. Batch-1 decode reads every weight once per
// token, so it cannot beat bandwidth / weight bytes tokens per second.
#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/timer.h"
#include "kernels/cpu_features.h"
#include "kernels/memory_bandwidth.h"
#include "model/kv_cache.h"

namespace llama3::apps {
namespace {

struct BenchOptions {
  ModelOptions model;
  std::string batch_sizes = "1,8,32";
  int64_t context = 128;
  int steps = 8;
  std::string json_out;
};

int run_bench(const BenchOptions& o) {
  o.model.apply_threads();
  const auto batches = parse_token_list(o.batch_sizes);
  check(!batches.empty(), "--batch_sizes is empty");
  for (int32_t b : batches) check(b >= 1 && b <= 32, "--batch_sizes: {} is not in 1..32", b);
  const double bandwidth = kernels::measure_read_bandwidth(size_t{1} << 30, 5);
  const model::OpenedModel opened = model::open_model(o.model.request());
  model::LlamaModel& m = *opened.model;
  const model::ModelConfig& c = m.config();
  // Bytes a decode step must read: every layer matrix and the LM head (the embedding lookup
  // reads only one row per user).
  const int64_t kv_dim = c.n_kv_heads * c.head_dim;
  const int64_t layer_params = 2 * c.dim * c.n_heads * c.head_dim + 2 * c.dim * kv_dim + 3 * c.dim * c.ffn_dim;
  const double step_bytes = 2.0 * static_cast<double>(c.n_layers * layer_params + c.vocab_size * c.dim);
  fmt::print("machine: {} threads, {} kernels, read bandwidth {:.1f} GB/s\n", thread_count(),
             kernels::isa_name(kernels::active_isa()), bandwidth / 1e9);
  fmt::print("model: {} ({} layers, {} weights), {:.2f} GB of bf16 weights read per decode step, loaded in {:.2f} s\n",
             c.name, c.n_layers, opened.weights, step_bytes / 1e9, opened.load_seconds);
  fmt::print("roofline at batch 1: {:.2f} tok/s ({:.1f} ms/token)\n\n", bandwidth / step_bytes,
             1e3 * step_bytes / bandwidth);
  fmt::print("{:>5} {:>10} {:>12} {:>12} {:>12} {:>10}\n", "batch", "ms/step", "tok/s/user", "tok/s", "weight GB/s",
             "of limit");
  nlohmann::json rows = nlohmann::json::array();
  std::mt19937 rng(1);
  for (int32_t batch : batches) {
    const int64_t per_user = o.context + o.steps + 2;
    constexpr int64_t kBlock = 32;
    const int64_t blocks_per_user = (per_user + kBlock - 1) / kBlock;
    model::KvCache cache(c, blocks_per_user * batch, kBlock,
                         o.model.kv_cache == "f32" ? kernels::KvDType::F32 : kernels::KvDType::BF16);
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(batch));
    for (int32_t u = 0; u < batch; ++u) {
      tables[static_cast<size_t>(u)].resize(static_cast<size_t>(blocks_per_user));
      std::iota(tables[static_cast<size_t>(u)].begin(), tables[static_cast<size_t>(u)].end(), u * blocks_per_user);
    }
    std::vector<float> logits;
    std::vector<int32_t> prompt(static_cast<size_t>(o.context));
    for (int32_t u = 0; u < batch; ++u) {  // fill each user's cache with `context` tokens
      for (auto& t : prompt) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(c.vocab_size, 128000)));
      const model::BatchItem item{prompt, 0, tables[static_cast<size_t>(u)], false};
      m.forward({&item, 1}, cache, logits);
    }
    std::vector<int32_t> next(static_cast<size_t>(batch), 1);
    std::vector<model::BatchItem> items;
    double best_ms = 1e30, total_ms = 0.0;
    for (int s = -1; s < o.steps; ++s) {  // step -1 warms up
      items.clear();
      for (int32_t u = 0; u < batch; ++u) {
        items.push_back({std::span(&next[static_cast<size_t>(u)], 1), o.context + s + 1, tables[static_cast<size_t>(u)], false});
      }
      const Timer t;
      m.forward(items, cache, logits);
      const double ms = t.ms();
      if (s >= 0) best_ms = std::min(best_ms, ms), total_ms += ms;
    }
    const double mean_ms = total_ms / o.steps;
    const double gbs = step_bytes / (mean_ms / 1e3) / 1e9;
    fmt::print("{:>5} {:>10.1f} {:>12.2f} {:>12.1f} {:>12.1f} {:>9.0f}%\n", batch, mean_ms, 1e3 / mean_ms,
               1e3 * batch / mean_ms, gbs, 100.0 * gbs * 1e9 / bandwidth);
    rows.push_back({{"batch", batch}, {"ms_per_step_mean", mean_ms}, {"ms_per_step_best", best_ms},
                    {"tokens_per_s_per_user", 1e3 / mean_ms}, {"tokens_per_s", 1e3 * batch / mean_ms},
                    {"weight_gb_per_s", gbs}, {"fraction_of_bandwidth", gbs * 1e9 / bandwidth}});
  }
  if (!o.json_out.empty()) {
    std::ofstream out(o.json_out);
    check(static_cast<bool>(out), "cannot write {}", o.json_out);
    out << nlohmann::json{{"model", c.name}, {"layers", c.n_layers}, {"threads", thread_count()},
                          {"isa", kernels::isa_name(kernels::active_isa())}, {"read_bandwidth_gb_per_s", bandwidth / 1e9},
                          {"weight_bytes_per_step", step_bytes}, {"context", o.context}, {"load_seconds", opened.load_seconds},
                          {"rows", rows}}.dump(2)
        << "\n";
  }
  return 0;
}

const CommandRegistrar kRegistrar{"bench", "decode step time vs the memory-bandwidth roofline", [](CLI::App& app) {
                                    auto o = std::make_shared<BenchOptions>();
                                    o->model.add_to(app);
                                    app.add_option("--batch_sizes", o->batch_sizes, "e.g. 1,8,32")->capture_default_str();
                                    app.add_option("--context", o->context, "tokens in each user's cache")
                                        ->check(CLI::PositiveNumber)
                                        ->capture_default_str();
                                    app.add_option("--steps", o->steps, "timed decode steps per batch size")
                                        ->check(CLI::PositiveNumber)
                                        ->capture_default_str();
                                    app.add_option("--json", o->json_out, "also write the figures as JSON");
                                    return [o] { return run_bench(*o); };
                                  }};

}  // namespace
}  // namespace llama3::apps

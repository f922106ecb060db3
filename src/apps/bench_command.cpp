// `llama3 bench`: the engine's speed against the machine's limits, measured in the same run:
//  - the limits: read bandwidth (vectorized, all threads) and the compute peak of each
//    instruction the kernels use (register-only loops);
//  - prefill of --prefill tokens (tokens/s, and the fraction of the compute peak of the
//    instructions the mode's matrices run on);
//  - batch-1 decode of --decode tokens (tokens/s, and the fraction of the bandwidth roofline:
//    batch-1 decode reads every weight once per token, so it cannot beat bandwidth / bytes);
//  - aggregate decode with each of --batch_sizes sequences.
// Each figure is repeated --reps times; a repetition during which another process took CPU is
// redone (this machine is shared), and best and median are reported.
#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "core/cpu_usage.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "core/timer.h"
#include "kernels/compute_peak.h"
#include "kernels/cpu_features.h"
#include "kernels/memory_bandwidth.h"
#include "model/model_weights.h"
#include "runtime/sequence_runner.h"

namespace llama3::apps {
namespace {

struct BenchOptions {
  ModelOptions model;
  std::string batch_sizes = "1,8,32";
  int64_t context = 128;  // tokens in each sequence's cache before timed decode steps
  int steps = 16;         // timed decode steps per batch size
  int64_t prefill = 512;  // 0: skip
  int64_t decode = 128;   // batch-1 decode tokens; 0: skip
  int reps = 3;
  double idle_wait = 10.0;  // seconds to wait for idle CPUs before each repetition
  int max_redo = 3;         // redos of a disturbed repetition
  std::optional<std::string> prompt_tokens;  // JSON list of ids (the peer benchmark's prompt)
  std::optional<std::string> json_out;
};

struct Stats {
  std::vector<double> values;  // one per repetition (higher is better)
  int redone = 0;
  double best() const { return values.empty() ? 0.0 : *std::max_element(values.begin(), values.end()); }
  double median() const {
    if (values.empty()) return 0.0;
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  }
  nlohmann::json to_json() const { return {{"best", best()}, {"median", median()}, {"all", values}, {"redone", redone}}; }
};

// Runs `fn` (returns a rate) `reps` times, each after waiting for idle CPUs; a repetition during
// which other processes took more than 5% of a CPU is redone (up to max_redo times).
struct Hygiene {
  double idle_wait = 10.0;
  int max_redo = 3;
};

template <typename Fn>
Stats measure(int reps, const Hygiene& h, Fn&& fn) {
  Stats s;
  for (int r = 0; r < reps; ++r) {
    for (int attempt = 0;; ++attempt) {
      if (h.idle_wait > 0) wait_for_idle(h.idle_wait);
      const CpuSample before = cpu_sample();
      const double value = fn();
      if (!disturbed(before, cpu_sample()) || attempt >= h.max_redo) {
        s.values.push_back(value);
        break;
      }
      ++s.redone;
    }
  }
  return s;
}

// Operations and bytes of the matrix products per token, by the instruction they run on.
// Seconds a token's products take at the peak of their instructions, for a set of matrices.
struct Ops {
  double bf16 = 0;  // 2 x multiply-adds on bf16 weights (fp32 FMA kernels)
  double int8 = 0;  // on 8-/4-bit weights (vpdpbusd kernels)
  double seconds_at(const kernels::ComputePeak& p) const {
    const double int8_peak = p.int8_dot_gops > 0 ? p.int8_dot_gops : p.fp32_fma_gflops;  // no VNNI: fp32 FMA
    return bf16 / (p.fp32_fma_gflops * 1e9) + int8 / (int8_peak * 1e9);
  }
};

struct ModelCost {
  double bytes_per_token = 0;  // weights a decode step reads: every layer matrix and the LM head
  Ops layers;                  // per token, every token
  Ops lm_head;                 // per token that needs logits (a prefill: only its last)
};

ModelCost model_cost(const model::ModelWeights& w) {
  ModelCost c;
  auto add = [&](const model::Matrix& m, Ops& ops) {
    c.bytes_per_token += static_cast<double>(m.bytes());
    (m.format == kernels::WeightFormat::BF16 ? ops.bf16 : ops.int8) += 2.0 * static_cast<double>(m.rows * m.cols);
  };
  for (const auto& L : w.layers) {
    for (const model::Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w1, &L.w3, &L.w2}) add(*m, c.layers);
  }
  add(w.output, c.lm_head);
  return c;
}

// Microseconds one parallel region with no work costs (best of 5 runs of 2000).
double measure_fork_join_us() {
  double best = 1e30;
  for (int run = 0; run < 5; ++run) {
    const Timer t;
    for (int i = 0; i < 2000; ++i) parallel_for(static_cast<size_t>(thread_count()), [](size_t, size_t) {});
    best = std::min(best, t.seconds() * 1e6 / 2000);
  }
  return best;
}

std::vector<int32_t> bench_prompt(const BenchOptions& o, int64_t vocab, int64_t n) {
  std::vector<int32_t> ids;
  if (o.prompt_tokens) ids = parse_token_list(read_file(*o.prompt_tokens, "prompt token file"));
  std::mt19937 rng(1);
  while (static_cast<int64_t>(ids.size()) < n) {
    ids.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(std::min<int64_t>(vocab, 128000))));
  }
  for (int32_t id : ids) check(id < vocab, "prompt token {} is outside the vocabulary", id);
  ids.resize(static_cast<size_t>(n));
  return ids;
}

int run_bench(const BenchOptions& o) {
  o.model.apply_threads();
  const auto batches = parse_token_list(o.batch_sizes);
  for (int32_t b : batches) check(b >= 1 && b <= 32, "--batch_sizes: {} is not in 1..32", b);
  check(o.reps >= 1, "--reps must be positive");

  const Hygiene hygiene{o.idle_wait, o.max_redo};
  if (o.idle_wait > 0) wait_for_idle(o.idle_wait);
  const double bandwidth = kernels::measure_read_bandwidth(size_t{1} << 30, 5);
  const kernels::ComputePeak peak = kernels::measure_compute_peak();
  const model::OpenedModel opened = model::open_model(o.model.request());
  model::LlamaModel& m = *opened.model;
  const model::ModelConfig& c = m.config();
  const ModelCost cost = model_cost(m.weights());
  // Time the matrix products would take at the peak of their instructions (attention is left
  // out: at these contexts it is a few percent of the work). A decode token runs every layer and
  // the LM head; a prefill runs the LM head once.
  const double layer_s = cost.layers.seconds_at(peak);
  const double decode_ideal_s = layer_s + cost.lm_head.seconds_at(peak);
  auto prefill_ideal_s = [&](int64_t tokens) { return static_cast<double>(tokens) * layer_s + cost.lm_head.seconds_at(peak); };

  fmt::print("machine: {} threads, {} kernels, read bandwidth {:.1f} GB/s, peaks: fp32 FMA {:.0f} GFLOP/s, "
             "vpdpbusd {:.0f} GOP/s, vdpbf16ps {:.0f} GFLOP/s\n",
             thread_count(), kernels::isa_name(kernels::active_isa()), bandwidth / 1e9, peak.fp32_fma_gflops,
             peak.int8_dot_gops, peak.bf16_dot_gflops);
  fmt::print("model: {} ({} layers, {} weights), mode {} {}, {:.3f} GB of weights read per decode step, "
             "loaded in {:.2f} s (weight cache: {})\n",
             c.name, c.n_layers, opened.weights, opened.precision.mode, opened.precision.to_json(),
             cost.bytes_per_token / 1e9, opened.load_seconds, opened.cache);
  const double roofline = bandwidth / cost.bytes_per_token;
  fmt::print("limits: batch-1 decode {:.2f} tok/s (bandwidth / bytes per token); prefill {:.1f} tok/s (compute peak)\n\n",
             roofline, static_cast<double>(std::max<int64_t>(o.prefill, 1)) / prefill_ideal_s(std::max<int64_t>(o.prefill, 1)));

  nlohmann::json result = {
      {"model", c.name}, {"layers", c.n_layers}, {"weights", opened.weights}, {"mode", opened.precision.mode},
      {"precision", nlohmann::json::parse(opened.precision.to_json())}, {"threads", thread_count()},
      {"isa", kernels::isa_name(kernels::active_isa())}, {"read_bandwidth_gb_per_s", bandwidth / 1e9},
      {"peak_fp32_fma_gflops", peak.fp32_fma_gflops}, {"peak_vpdpbusd_gops", peak.int8_dot_gops},
      {"peak_vdpbf16ps_gflops", peak.bf16_dot_gflops}, {"weight_bytes_per_token", cost.bytes_per_token},
      {"load_seconds", opened.load_seconds}, {"weight_cache", opened.cache},
      // Seconds per token at the compute peaks: a decode token (layers + LM head), and the parts.
      {"ideal_seconds", {{"decode_token", decode_ideal_s}, {"layers_per_token", layer_s},
                         {"lm_head", cost.lm_head.seconds_at(peak)}}}};
  const int64_t longest = std::max<int64_t>({o.prefill, o.context + 8}) + 1;
  const std::vector<int32_t> prompt = bench_prompt(o, c.vocab_size, longest);
  const int64_t vocab = c.vocab_size;

  if (o.prefill > 0) {
    runtime::SequenceRunner runner(m, 1, o.prefill, opened.precision.kv_cache);
    std::vector<float> logits;
    const std::span<const int32_t> tokens(prompt.data(), static_cast<size_t>(o.prefill));
    const Stats s = measure(o.reps, hygiene, [&] {
      runner.reset();
      const Timer t;
      runner.prefill(0, tokens, o.prefill, false, logits);
      return static_cast<double>(o.prefill) / t.seconds();
    });
    const double frac = s.best() * prefill_ideal_s(o.prefill) / static_cast<double>(o.prefill);
    fmt::print("prefill {} tokens: {:.1f} tok/s best, {:.1f} median ({:.0f}% of the compute peak){}\n", o.prefill,
               s.best(), s.median(), 100 * frac, s.redone ? fmt::format(", {} disturbed reps redone", s.redone) : "");
    result["prefill"] = {{"tokens", o.prefill}, {"tokens_per_s", s.to_json()}, {"fraction_of_compute_peak", frac}};
  }
  if (o.decode > 0) {
    runtime::SequenceRunner runner(m, 1, o.context + o.decode + 1, opened.precision.kv_cache);
    std::vector<float> logits;
    uint64_t regions = 0;
    const Stats s = measure(o.reps, hygiene, [&] {
      runner.reset();
      runner.prefill(0, std::span(prompt.data(), static_cast<size_t>(o.context)), 512, false, logits);
      int32_t next = runtime::argmax_row(logits, 0, vocab);
      const uint64_t regions_before = parallel_region_count().load();
      const Timer t;
      for (int64_t i = 0; i < o.decode; ++i) {
        runner.decode(std::span(&next, 1), logits);
        next = runtime::argmax_row(logits, 0, vocab);
      }
      regions = parallel_region_count().load() - regions_before;
      return static_cast<double>(o.decode) / t.seconds();
    });
    // What a step's fork-joins cost: empty parallel regions timed on the same threads.
    const double fork_join_us = measure_fork_join_us();
    const double per_step = static_cast<double>(regions) / static_cast<double>(o.decode);
    const double gbs = s.best() * cost.bytes_per_token / 1e9;
    fmt::print("decode batch 1, {} tokens after {}: {:.2f} tok/s best, {:.2f} median; weights at {:.1f} GB/s = {:.0f}% "
               "of the read bandwidth{}\n",
               o.decode, o.context, s.best(), s.median(), gbs, 100 * gbs * 1e9 / bandwidth,
               s.redone ? fmt::format(", {} disturbed reps redone", s.redone) : "");
    const double overhead = per_step * fork_join_us * 1e-6 * s.best();
    fmt::print("  fork-join: {:.0f} parallel regions per step, {:.1f} us each (empty region) = {:.2f}% of a step\n",
               per_step, fork_join_us, 100 * overhead);
    result["decode"] = {{"tokens", o.decode}, {"context", o.context}, {"tokens_per_s", s.to_json()},
                        {"weight_gb_per_s", gbs}, {"fraction_of_bandwidth", gbs * 1e9 / bandwidth},
                        {"parallel_regions_per_step", per_step}, {"fork_join_us", fork_join_us},
                        {"fork_join_fraction_of_step", overhead}};
  }

  fmt::print("\n{:>5} {:>10} {:>12} {:>12} {:>12} {:>10} {:>10}\n", "batch", "ms/step", "tok/s/user", "tok/s",
             "weight GB/s", "of bandw.", "of peak");
  nlohmann::json rows = nlohmann::json::array();
  for (int32_t batch : batches) {
    runtime::SequenceRunner runner(m, batch, o.context + o.steps + 1, opened.precision.kv_cache);
    std::vector<float> logits;
    std::vector<int32_t> next(static_cast<size_t>(batch));
    const Stats s = measure(o.reps, hygiene, [&] {
      runner.reset();
      for (int32_t u = 0; u < batch; ++u) {  // each user its own slice of the prompt stream
        const size_t off = static_cast<size_t>(u) % 7;
        runner.prefill(u, std::span(prompt).subspan(off, static_cast<size_t>(o.context)), 512, false, logits);
        next[static_cast<size_t>(u)] = runtime::argmax_row(logits, 0, vocab);
      }
      const Timer t;
      for (int step = 0; step < o.steps; ++step) {
        runner.decode(next, logits);
        for (int32_t u = 0; u < batch; ++u) next[static_cast<size_t>(u)] = runtime::argmax_row(logits, u, vocab);
      }
      return static_cast<double>(o.steps) * batch / t.seconds();  // aggregate tokens/s
    });
    const double tps = s.best();
    const double ms = 1e3 * batch / tps;
    const double gbs = cost.bytes_per_token * tps / batch / 1e9;
    const double of_peak = tps * decode_ideal_s;
    fmt::print("{:>5} {:>10.1f} {:>12.2f} {:>12.1f} {:>12.1f} {:>9.0f}% {:>9.0f}%\n", batch, ms, tps / batch, tps, gbs,
               100 * gbs * 1e9 / bandwidth, 100 * of_peak);
    rows.push_back({{"batch", batch}, {"tokens_per_s", s.to_json()}, {"ms_per_step_best", ms},
                    {"tokens_per_s_per_user", tps / batch}, {"weight_gb_per_s", gbs},
                    {"fraction_of_bandwidth", gbs * 1e9 / bandwidth}, {"fraction_of_compute_peak", of_peak}});
  }
  result["context"] = o.context;
  result["batches"] = rows;
  if (o.json_out) {
    std::ofstream out(*o.json_out);
    check(static_cast<bool>(out), "cannot write {}", *o.json_out);
    out << result.dump(2) << "\n";
  }
  return 0;
}

const CommandRegistrar kRegistrar{
    "bench", "prefill and decode speed against the machine's measured bandwidth and compute peaks",
    [](CLI::App& app) {
      auto o = std::make_shared<BenchOptions>();
      o->model.add_to(app);
      app.add_option("--batch_sizes", o->batch_sizes, "aggregate decode with these many sequences, e.g. 1,8,32")
          ->capture_default_str();
      app.add_option("--context", o->context, "tokens in each sequence's cache before the timed decode")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--steps", o->steps, "timed decode steps per batch size")->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--prefill", o->prefill, "prompt tokens of the prefill measurement (0: skip)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--decode", o->decode, "tokens of the batch-1 decode measurement (0: skip)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--reps", o->reps, "repetitions of each measurement (best and median)")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--idle_wait", o->idle_wait, "seconds to wait for idle CPUs before each repetition (0: none)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--max_redo", o->max_redo, "times a repetition disturbed by another process is redone")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--prompt_tokens", o->prompt_tokens, "JSON list of prompt token ids (default: random ids, seed 1)");
      app.add_option("--json", o->json_out, "also write the figures as JSON");
      return [o] { return run_bench(*o); };
    }};

}  // namespace
}  // namespace llama3::apps

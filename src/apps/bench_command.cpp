// `llama3 bench`: the engine's speed against the machine's limits, measured in the same run:
//  - the limits: read bandwidth (vectorized, all threads) and the compute peak of each
//    instruction the kernels use (register-only loops), measured at the start and again at the
//    end (this machine's bandwidth drifts by +-20%): each figure is compared with the best;
//  - prefill of --prefill tokens (tokens/s, and the fraction of the compute peak of the
//    instructions the mode's matrices run on);
//  - batch-1 decode of --decode tokens (tokens/s, and the fraction of the bandwidth roofline:
//    batch-1 decode reads every weight once per token, so it cannot beat bandwidth / bytes);
//  - aggregate decode with each of --batch_sizes sequences;
//  - with --attention, the attention kernel alone at --context (bench_attention.h).
// --context puts every decode measurement at depth (like llama-bench -d): each sequence's cache
// holds that many positions first, by a prefill or (--context_fill synthetic, for long contexts
// whose prefill would take long) by random keys and values, which cost decode the same.
// Each figure is repeated --reps times; a repetition during which another process took CPU is
// redone (bench_measure.h), and best and median are reported.
#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "apps/bench_attention.h"
#include "apps/bench_measure.h"
#include "apps/cli_options.h"
#include "apps/command.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "core/timer.h"
#include "dist/process_mesh.h"
#include "dist/solo_communicator.h"
#include "model/mesh_open.h"
#include "kernels/cpu_features.h"
#include "runtime/sequence_runner.h"

namespace llama3::apps {
namespace {

struct BenchOptions {
  ModelOptions model;
  std::string batch_sizes = "1,8,32";
  int64_t context = 128;  // tokens in each sequence's cache before timed decode steps
  int steps = 16;         // timed decode steps per batch size
  int64_t prefill = 512;  // 0: skip
  int64_t prefill_chunk = 0;  // tokens per forward pass of the prefill measurement; 0: all at once
  std::string context_fill = "prefill";  // prefill | synthetic
  bool attention = false;
  int64_t attention_chunk = 256;
  int64_t decode = 128;   // batch-1 decode tokens; 0: skip
  int reps = 3;
  Hygiene hygiene;
  std::optional<std::string> prompt_tokens;  // JSON list of ids (the peer benchmark's prompt)
  std::optional<std::string> json_out;
  std::optional<std::string> shard;  // "R/T": rank R's share of a T-rank mesh, computed alone
  int64_t logit_candidates = 0;      // on a mesh: gather each row's k largest logits, not the row
};

// --shard R/T: rank R's share of the model on a T-rank mesh, computing alone (its collectives
// move nothing): the compute time of one machine of a cluster, measured on this one.
model::OpenedModel open_solo_share(const BenchOptions& o, std::unique_ptr<dist::SoloCommunicator>& solo) {
  const std::string& text = *o.shard;
  const size_t slash = text.find('/');
  int rank = -1, ranks = 0;
  try {
    check(slash != std::string::npos, "");
    rank = std::stoi(text.substr(0, slash));
    ranks = std::stoi(text.substr(slash + 1));
  } catch (const std::exception&) {
    fail("--shard {}: expected R/T, e.g. 0/8", text);
  }
  solo = std::make_unique<dist::SoloCommunicator>(rank, ranks);
  return model::open_share(o.model.request(), *solo);
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

struct DecodeRun {
  Stats tps;
  double regions_per_step = 0;
};

struct BatchRun {
  int32_t batch;
  Stats tps;  // aggregate tokens/s
  // On a mesh: the collectives of the last repetition's timed steps, and its ms per step.
  model::CollectiveStats comm;
  double comm_rep_ms_per_step = 0.0;
};

// The decode steps' split between computing and communicating on rank 0 of a mesh (the
// communication time includes waiting for the slowest rank).
nlohmann::json print_mesh_split(int ranks, int steps, const std::vector<BatchRun>& runs) {
  fmt::print("\nmesh of {} ranks, per decode step (rank 0, the last repetition):\n{:>5} {:>10} {:>12} {:>13} {:>12} "
             "{:>10} {:>9}\n",
             ranks, "batch", "ms/step", "all-reduces", "bytes each", "gathered B", "comm ms", "of step");
  nlohmann::json rows = nlohmann::json::array();
  for (const BatchRun& r : runs) {
    const double n = steps;
    const double comm_ms = 1e3 * r.comm.seconds / n;
    const double reduces = static_cast<double>(r.comm.all_reduces) / n;
    const double bytes_each = r.comm.all_reduces ? static_cast<double>(r.comm.all_reduce_bytes) / r.comm.all_reduces : 0;
    const double gathered = static_cast<double>(r.comm.gather_bytes) / n;
    fmt::print("{:>5} {:>10.2f} {:>12.0f} {:>13.0f} {:>12.0f} {:>10.2f} {:>8.0f}%\n", r.batch, r.comm_rep_ms_per_step,
               reduces, bytes_each, gathered, comm_ms, 100 * comm_ms / r.comm_rep_ms_per_step);
    rows.push_back({{"batch", r.batch}, {"ms_per_step", r.comm_rep_ms_per_step}, {"all_reduces_per_step", reduces},
                    {"all_reduce_bytes_each", bytes_each}, {"gathered_bytes_per_step", gathered},
                    {"communication_ms_per_step", comm_ms}});
  }
  return {{"ranks", ranks}, {"steps", rows}};
}

int run_bench(const BenchOptions& o) {
  o.model.apply_threads();
  const auto batches = parse_token_list(o.batch_sizes);
  for (int32_t b : batches) check(b >= 1 && b <= 32, "--batch_sizes: {} is not in 1..32", b);
  check(o.reps >= 1, "--reps must be positive");
  // Under mpirun the other ranks busy-wait in MPI between passes: CPUs are never idle and every
  // repetition looks disturbed, so the hygiene is off (the figures are as noisy as the machine).
  Hygiene hygiene = o.hygiene;
  if (dist::in_mpi_job()) {
    hygiene.idle_wait = 0;
    hygiene.max_redo = 0;
    fmt::print("mesh: {} ranks; no waiting for idle CPUs and no redos (the other ranks busy-wait in MPI)\n",
               dist::world_size());
  }

  const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
  const bool go_on = o.model.settle_memory([&](const model::ModelPlan& plan) {
    // The largest of the runs below: a batch at --context plus its steps, or the prefill.
    runtime::RunShape shape;
    shape.batch = max_batch;
    shape.step_tokens = std::max<int64_t>(o.prefill, max_batch);
    shape.logit_rows = max_batch;
    const int64_t positions = std::max(max_batch * (o.context + o.steps + 1), o.prefill);
    shape.kv_bytes = model::KvCache::bytes_for(plan.kv_config, positions / 32 + max_batch, 32, plan.precision.kv_cache);
    return shape;
  });
  if (!go_on) return 0;
  Limits limits = measure_limits(hygiene);
  std::unique_ptr<dist::SoloCommunicator> solo;
  const model::OpenedModel opened = o.shard ? open_solo_share(o, solo) : model::open_model(o.model.request());
  model::LlamaModel& m = *opened.model;
  m.set_logit_candidates(o.logit_candidates);
  const model::ModelConfig& c = m.config();
  const int64_t vocab = c.vocab_size;
  const std::vector<int32_t> prompt = bench_prompt(o, vocab, std::max<int64_t>(o.prefill, o.context + 8) + 1);
  // Puts --context positions in sequence s's cache (prompt tokens from `offset`); returns the
  // token to decode next.
  const bool synthetic = o.context_fill == "synthetic";
  auto fill_context = [&](runtime::SequenceRunner& runner, int64_t s, size_t offset, std::vector<float>& logits) {
    if (synthetic) {
      runner.fill_synthetic(s, o.context, static_cast<uint32_t>(s + 1));
      return prompt[offset + static_cast<size_t>(o.context)];
    }
    runner.prefill(s, std::span(prompt).subspan(offset, static_cast<size_t>(o.context)), 512, false, logits);
    return runtime::argmax_row(logits, 0, vocab);
  };

  // Measure first, print after: fractions compare with the best limits of the whole run.
  std::optional<Stats> prefill;
  if (o.prefill > 0) {
    runtime::SequenceRunner runner(m, 1, o.prefill, opened.precision.kv_cache);
    std::vector<float> logits;
    prefill = measure(o.reps, hygiene, [&] {
      runner.reset();
      const Timer t;
      runner.prefill(0, std::span(prompt.data(), static_cast<size_t>(o.prefill)),
                     o.prefill_chunk > 0 ? o.prefill_chunk : o.prefill, false, logits);
      return static_cast<double>(o.prefill) / t.seconds();
    });
  }
  std::optional<DecodeRun> decode;
  if (o.decode > 0) {
    runtime::SequenceRunner runner(m, 1, o.context + o.decode + 1, opened.precision.kv_cache);
    std::vector<float> logits;
    uint64_t regions = 0;
    decode = DecodeRun{measure(o.reps, hygiene, [&] {
      runner.reset();
      int32_t next = fill_context(runner, 0, 0, logits);
      const uint64_t regions_before = parallel_region_count().load();
      const Timer t;
      for (int64_t i = 0; i < o.decode; ++i) {
        runner.decode(std::span(&next, 1), logits);
        next = runtime::argmax_row(logits, 0, vocab);
      }
      regions = parallel_region_count().load() - regions_before;
      return static_cast<double>(o.decode) / t.seconds();
    })};
    decode->regions_per_step = static_cast<double>(regions) / static_cast<double>(o.decode);
  }
  std::vector<BatchRun> batch_runs;
  for (int32_t batch : batches) {
    runtime::SequenceRunner runner(m, batch, o.context + o.steps + 1, opened.precision.kv_cache);
    std::vector<float> logits;
    std::vector<int32_t> next(static_cast<size_t>(batch));
    model::CollectiveStats comm;
    double rep_ms_per_step = 0.0;
    batch_runs.push_back({batch, measure(o.reps, hygiene, [&] {
      runner.reset();
      for (int32_t u = 0; u < batch; ++u) {  // each user its own slice of the prompt stream
        next[static_cast<size_t>(u)] = fill_context(runner, u, static_cast<size_t>(u) % 7, logits);
      }
      m.reset_collective_stats();
      const Timer t;
      for (int step = 0; step < o.steps; ++step) {
        runner.decode(next, logits);
        for (int32_t u = 0; u < batch; ++u) next[static_cast<size_t>(u)] = runtime::argmax_row(logits, u, vocab);
      }
      const double seconds = t.seconds();
      comm = m.collective_stats();
      rep_ms_per_step = 1e3 * seconds / o.steps;
      return static_cast<double>(o.steps) * batch / seconds;
    })});
    batch_runs.back().comm = comm;
    batch_runs.back().comm_rep_ms_per_step = rep_ms_per_step;
  }
  std::optional<AttentionRun> attention;
  if (o.attention) {
    runtime::SequenceRunner runner(m, 1, o.context, opened.precision.kv_cache);
    runner.fill_synthetic(0, o.context, 1);
    attention = measure_attention(m, runner, o.attention_chunk, o.reps, hygiene);
  }
  limits.raise_to(measure_limits(hygiene));
  const double fork_join_us = measure_fork_join_us();

  // The limits, and what each figure is of them.
  const double bw = limits.bandwidth;
  const kernels::ComputePeak& peak = limits.peak;
  const ModelCost cost = model_cost(m.weights());
  // Matrix products at the peaks of their instructions (attention left out: a few percent of
  // the work at these contexts). A decode token runs every layer and the LM head; a prefill runs
  // the LM head once.
  const double layer_s = cost.layers.seconds_at(peak);
  const double head_s = cost.lm_head.seconds_at(peak);
  const double decode_ideal_s = layer_s + head_s;
  auto prefill_ideal_s = [&](int64_t n) { return static_cast<double>(n) * layer_s + head_s; };

  fmt::print("machine: {} threads, {} kernels; limits (best of the start and end of this run): read bandwidth "
             "{:.1f} GB/s, fp32 FMA {:.0f} GFLOP/s, vpdpbusd {:.0f} GOP/s, vdpbf16ps {:.0f} GFLOP/s\n",
             thread_count(), kernels::isa_name(kernels::active_isa()), bw / 1e9, peak.fp32_fma_gflops,
             peak.int8_dot_gops, peak.bf16_dot_gflops);
  fmt::print("model: {} ({} layers, {} weights), mode {} {}, {:.3f} GB of weights read per decode step, "
             "loaded in {:.2f} s (weight cache: {})\n",
             c.name, c.n_layers, opened.weights, opened.precision.mode, opened.precision.to_json(),
             cost.bytes_per_token / 1e9, opened.load_seconds, opened.cache);
  if (!m.weights().shard.whole()) fmt::print("share: {}\n", m.weights().shard.describe());
  fmt::print("roofline: batch-1 decode {:.2f} tok/s (bandwidth / bytes per token); prefill {:.1f} tok/s (compute "
             "peaks)\n\n",
             bw / cost.bytes_per_token, static_cast<double>(std::max<int64_t>(o.prefill, 1)) /
                                            prefill_ideal_s(std::max<int64_t>(o.prefill, 1)));
  nlohmann::json result = {
      {"model", c.name}, {"layers", c.n_layers}, {"weights", opened.weights}, {"mode", opened.precision.mode},
      {"precision", nlohmann::json::parse(opened.precision.to_json())}, {"threads", thread_count()},
      {"logit_candidates", o.logit_candidates},
      {"isa", kernels::isa_name(kernels::active_isa())}, {"read_bandwidth_gb_per_s", bw / 1e9},
      {"peak_fp32_fma_gflops", peak.fp32_fma_gflops}, {"peak_vpdpbusd_gops", peak.int8_dot_gops},
      {"peak_vdpbf16ps_gflops", peak.bf16_dot_gflops}, {"weight_bytes_per_token", cost.bytes_per_token},
      {"load_seconds", opened.load_seconds}, {"weight_cache", opened.cache}, {"context", o.context},
      // Matrix operations (2 x multiply-adds) per decoded token, by the kernels' instruction: the
      // roofline's arithmetic intensity (llama3 plot) is these over weight_bytes_per_token.
      {"ops_per_token",
       {{"bf16", cost.layers.bf16 + cost.lm_head.bf16}, {"int8", cost.layers.int8 + cost.lm_head.int8}}},
      // Seconds per token at the compute peaks: a decode token (layers + LM head), and the parts.
      {"ideal_seconds", {{"decode_token", decode_ideal_s}, {"layers_per_token", layer_s}, {"lm_head", head_s}}}};
  if (prefill) {
    const double frac = prefill->best() * prefill_ideal_s(o.prefill) / static_cast<double>(o.prefill);
    fmt::print("prefill {} tokens: {:.1f} tok/s best, {:.1f} median ({:.0f}% of the compute peak){}\n", o.prefill,
               prefill->best(), prefill->median(), 100 * frac, redone(*prefill));
    result["prefill"] = {{"tokens", o.prefill}, {"tokens_per_s", prefill->to_json()}, {"fraction_of_compute_peak", frac}};
  }
  if (decode) {
    const Stats& s = decode->tps;
    const double gbs = s.best() * cost.bytes_per_token / 1e9;
    const double overhead = decode->regions_per_step * fork_join_us * 1e-6 * s.best();
    fmt::print("decode batch 1, {} tokens after {}: {:.2f} tok/s best, {:.2f} median; weights at {:.1f} GB/s = {:.0f}% "
               "of the read bandwidth{}\n",
               o.decode, o.context, s.best(), s.median(), gbs, 100 * gbs * 1e9 / bw, redone(s));
    fmt::print("  fork-join: {:.0f} parallel regions per step, {:.1f} us each (empty region) = {:.2f}% of a step\n",
               decode->regions_per_step, fork_join_us, 100 * overhead);
    result["decode"] = {{"tokens", o.decode}, {"context", o.context}, {"tokens_per_s", s.to_json()},
                        {"weight_gb_per_s", gbs}, {"fraction_of_bandwidth", gbs * 1e9 / bw},
                        {"parallel_regions_per_step", decode->regions_per_step}, {"fork_join_us", fork_join_us},
                        {"fork_join_fraction_of_step", overhead}};
  }
  fmt::print("\n{:>5} {:>10} {:>12} {:>12} {:>12} {:>10} {:>10}\n", "batch", "ms/step", "tok/s/user", "tok/s",
             "weight GB/s", "of bandw.", "of peak");
  nlohmann::json rows = nlohmann::json::array();
  for (const BatchRun& r : batch_runs) {
    const double tps = r.tps.best();
    const double gbs = cost.bytes_per_token * tps / r.batch / 1e9;
    const double of_peak = tps * decode_ideal_s;
    fmt::print("{:>5} {:>10.1f} {:>12.2f} {:>12.1f} {:>12.1f} {:>9.0f}% {:>9.0f}%{}\n", r.batch, 1e3 * r.batch / tps,
               tps / r.batch, tps, gbs, 100 * gbs * 1e9 / bw, 100 * of_peak, redone(r.tps));
    rows.push_back({{"batch", r.batch}, {"tokens_per_s", r.tps.to_json()}, {"ms_per_step_best", 1e3 * r.batch / tps},
                    {"tokens_per_s_per_user", tps / r.batch}, {"weight_gb_per_s", gbs},
                    {"fraction_of_bandwidth", gbs * 1e9 / bw}, {"fraction_of_compute_peak", of_peak}});
  }
  result["batches"] = rows;
  if (m.mesh_ranks() > 1) result["mesh"] = print_mesh_split(m.mesh_ranks(), o.steps, batch_runs);
  if (attention) result["attention"] = print_attention(*attention, limits);
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
      app.add_option("--idle_wait", o->hygiene.idle_wait, "seconds to wait for idle CPUs before each repetition (0: none)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--max_redo", o->hygiene.max_redo, "times a repetition disturbed by another process is redone")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--prefill_chunk", o->prefill_chunk, "prompt tokens per forward pass of the prefill (0: all)")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--context_fill", o->context_fill,
                     "how the decode measurements' caches reach --context: prefill | synthetic (random keys and "
                     "values: decode costs the same, without a long prefill)")
          ->check(CLI::IsMember({"prefill", "synthetic"}))
          ->capture_default_str();
      app.add_flag("--attention", o->attention,
                   "also time the attention kernel alone at --context: decode per layer vs the read bandwidth, "
                   "a prefill chunk vs the fp32 FMA peak");
      app.add_option("--attention_chunk", o->attention_chunk, "prefill chunk of the --attention measurement")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
      app.add_option("--prompt_tokens", o->prompt_tokens, "JSON list of prompt token ids (default: random ids, seed 1)");
      app.add_option("--json", o->json_out, "also write the figures as JSON");
      app.add_option("--shard", o->shard,
                     "R/T: time rank R's share of a T-rank mesh computing alone (random weights; its collectives "
                     "move nothing): one machine of a cluster");
      app.add_option("--logit_candidates", o->logit_candidates,
                     "on a mesh, gather only each row's K largest logits (what sampling with top_k <= K needs, as "
                     "the demo and server do) instead of whole rows")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      return [o] { return run_bench(*o); };
    }};

}  // namespace
}  // namespace llama3::apps

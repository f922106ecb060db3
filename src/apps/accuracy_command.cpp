// `llama3 accuracy`: how much each precision mode changes the model, teacher-forced over a
// fixed text: top-1 / top-5 agreement with the bf16 run of the same weights, KL divergence
// (llama.cpp's statistics: mean and 99th percentile), and decode tokens/s/user. With real
// weights also top-1 / top-5 against the text's own next tokens, as the original's PERF.md.
// With --reference_kv_cache, the same statistics for the KV cache's precision instead: one model,
// two caches (--kv_cache against the reference's), run side by side chunk by chunk, so a long
// text needs no stored reference distributions.
#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/cli_options.h"
#include "apps/command.h"
#include "runtime/data_files.h"
#include "runtime/tokenizer_location.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "core/timer.h"
#include "model/model_source.h"
#include "runtime/logit_stats.h"
#include "runtime/sequence_runner.h"
#include "tokenizer/tokenizer.h"

namespace llama3::apps {
namespace {

struct AccuracyOptions {
  ModelOptions model;
  std::optional<std::string> text;  // default: demo/texts/declaration_of_independence.txt
  int64_t tokens = 512;
  int64_t decode_steps = 16;
  std::optional<std::string> tokenizer;
  std::optional<std::string> json_out;
  std::optional<std::string> reference_kv_cache;  // bf16 | f32 | q8: compare KV caches, not modes
};

constexpr int64_t kChunk = 256;

// Logits for every position of `tokens` (teacher-forced), passed row by row to `fn`.
template <typename Fn>
double teacher_forced(model::LlamaModel& m, std::span<const int32_t> tokens, kernels::KvDType kv, Fn&& fn,
                      double& decode_tps, int64_t decode_steps) {
  const int64_t vocab = m.config().vocab_size;
  runtime::SequenceRunner runner(m, 1, static_cast<int64_t>(tokens.size()) + decode_steps, kv);
  std::vector<float> logits;
  Progress progress("teacher-forced pass", static_cast<double>(tokens.size()), "tokens");
  const Timer timer;
  for (size_t begin = 0; begin < tokens.size(); begin += kChunk) {
    const size_t n = std::min<size_t>(kChunk, tokens.size() - begin);
    runner.prefill(0, tokens.subspan(begin, n), kChunk, true, logits);
    for (size_t r = 0; r < n; ++r) fn(begin + r, std::span<const float>(logits).subspan(r * vocab, vocab));
    progress.advance(static_cast<double>(n));
  }
  const double prefill_s = timer.seconds();
  progress.finish();
  // Decode speed after the text: batch 1, greedy.
  int32_t next = runtime::argmax_row(logits, static_cast<int64_t>(logits.size()) / vocab - 1, vocab);
  const Timer decode_timer;
  for (int64_t i = 0; i < decode_steps; ++i) {
    runner.decode(std::span(&next, 1), logits);
    next = runtime::argmax_row(logits, 0, vocab);
  }
  decode_tps = decode_steps > 0 ? static_cast<double>(decode_steps) / decode_timer.seconds() : 0.0;
  return prefill_s;
}

// Teacher-forced agreement of the model with --kv_cache against itself with the reference cache.
runtime::LogitComparison compare_kv_caches(model::LlamaModel& m, std::span<const int32_t> ids, kernels::KvDType ref_kv,
                                           kernels::KvDType kv) {
  const int64_t vocab = m.config().vocab_size;
  const auto n = static_cast<int64_t>(ids.size()) - 1;
  runtime::SequenceRunner ref(m, 1, n, ref_kv), test(m, 1, n, kv);
  runtime::LogitComparison stats;
  std::vector<float> ref_logits, logits;
  Progress progress("teacher-forced passes", static_cast<double>(n), "tokens");
  for (int64_t begin = 0; begin < n; begin += kChunk) {
    const int64_t len = std::min(kChunk, n - begin);
    const auto chunk = ids.subspan(static_cast<size_t>(begin), static_cast<size_t>(len));
    ref.prefill(0, chunk, kChunk, true, ref_logits);
    test.prefill(0, chunk, kChunk, true, logits);
    for (int64_t r = 0; r < len; ++r) {
      const auto row = [&](const std::vector<float>& l) { return std::span(l).subspan(static_cast<size_t>(r * vocab), static_cast<size_t>(vocab)); };
      stats.add(runtime::reference_position(row(ref_logits)), row(logits), ids[static_cast<size_t>(begin + r + 1)]);
    }
    progress.advance(static_cast<double>(len));
  }
  progress.finish();
  return stats;
}

int run_accuracy(const AccuracyOptions& o) {
  o.model.apply_threads();
  const auto dir = o.model.weights == "random" ? std::nullopt : model::resolve_model_dir(o.model.model_dir);
  const auto tok = runtime::load_tokenizer(
      o.tokenizer ? std::optional<std::filesystem::path>(*o.tokenizer) : std::nullopt, dir);
  const std::filesystem::path text_path =
      o.text ? std::filesystem::path(*o.text) : runtime::data_file("demo/texts/declaration_of_independence.txt");
  std::vector<int32_t> ids = tok.encode(read_file(text_path, "text"), true, false);
  check(static_cast<int64_t>(ids.size()) >= o.tokens + 1, "{} has {} tokens; --tokens {} needs {}", text_path.string(),
        ids.size(), o.tokens, o.tokens + 1);
  ids.resize(static_cast<size_t>(o.tokens + 1));  // positions 0..tokens-1 predict tokens 1..tokens
  const std::span<const int32_t> input(ids.data(), static_cast<size_t>(o.tokens));
  // The heaviest model loaded (the bf16 reference unless only KV caches are compared), with every
  // position's reference log-probabilities kept beside it.
  ModelOptions ref_options = o.model;
  if (!o.reference_kv_cache) {
    ref_options.optimizations = "bf16";
    ref_options.precision.reset();
    ref_options.mesh_payload = "fp32";  // on a mesh, --mesh_payload bf16's cost shows against it
  }
  const bool go_on = ref_options.settle_memory([&](const model::ModelPlan& plan) {
    runtime::RunShape shape;
    shape.step_tokens = std::min<int64_t>(o.tokens, kChunk);
    shape.logit_rows = shape.step_tokens;
    shape.kv_bytes = 2 * model::KvCache::bytes_for(plan.kv_config, (o.tokens + o.decode_steps) / 32 + 1, 32,
                                                   kernels::KvDType::F32);
    shape.kept_bytes = static_cast<size_t>(o.tokens * plan.config.vocab_size) * sizeof(float);
    shape.kept_what = "reference log-probabilities";
    return shape;
  });
  if (!go_on) return 0;

  if (o.reference_kv_cache) {
    const auto ref_kv = kernels::kv_dtype_from_name(*o.reference_kv_cache);
    check(ref_kv.has_value(), "--reference_kv_cache {} is not one of bf16, f32, q8", *o.reference_kv_cache);
    model::OpenedModel opened = model::open_model(o.model.request());
    const kernels::KvDType kv = opened.precision.kv_cache;
    fmt::print("model {} ({} weights, {} layers, {} mode), {} tokens of {}: {} KV cache against {}\n",
               opened.model->config().name, opened.weights, opened.model->config().n_layers, opened.precision.mode,
               o.tokens, text_path.filename().string(), kernels::kv_dtype_name(kv), kernels::kv_dtype_name(*ref_kv));
    const runtime::LogitComparison s = compare_kv_caches(*opened.model, ids, *ref_kv, kv);
    fmt::print("KV {} vs {}: top-1 {:.2f}%, top-5 {:.2f}%, mean KLD {:.6f}, KLD p99 {:.6f}\n", kernels::kv_dtype_name(kv),
               kernels::kv_dtype_name(*ref_kv), 100 * s.top1(), 100 * s.top5(), s.mean_kld(), s.kld_percentile(99));
    if (o.json_out) {
      std::ofstream out(*o.json_out);
      check(static_cast<bool>(out), "cannot write {}", *o.json_out);
      out << nlohmann::json{{"model", opened.model->config().name}, {"layers", opened.model->config().n_layers},
                            {"mode", opened.precision.mode}, {"tokens", o.tokens},
                            {"text", text_path.filename().string()}, {"kv_cache", kernels::kv_dtype_name(kv)},
                            {"reference_kv_cache", kernels::kv_dtype_name(*ref_kv)}, {"top1_agreement", s.top1()},
                            {"top5_agreement", s.top5()}, {"mean_kld", s.mean_kld()},
                            {"kld_p99", s.kld_percentile(99)}}
                 .dump(2)
          << "\n";
    }
    return 0;
  }

  // The reference: the same weights in bf16 (ref_options above).
  std::vector<runtime::ReferencePosition> reference(static_cast<size_t>(o.tokens));
  nlohmann::json rows = nlohmann::json::array();
  std::string model_name, weights;
  double ref_tps = 0.0;
  {
    model::OpenedModel ref = model::open_model(ref_options.request());
    model_name = ref.model->config().name;
    weights = ref.weights;
    fmt::print("model {} ({} weights, {} layers), {} tokens of {}\n", model_name, weights, ref.model->config().n_layers,
               o.tokens, text_path.filename().string());
    teacher_forced(*ref.model, input, ref.precision.kv_cache,
                   [&](size_t pos, std::span<const float> row) { reference[pos] = runtime::reference_position(row); },
                   ref_tps, o.decode_steps);
  }
  runtime::LogitComparison self;
  // The reference against itself: KLD 0 and agreement 100% by definition; its text hits are real.
  for (size_t p = 0; p < reference.size(); ++p) {
    std::vector<float> lp = reference[p].log_probs;
    self.add(reference[p], lp, ids[p + 1]);
  }

  const std::vector<std::string> modes =
      o.model.optimizations || o.model.precision ? std::vector<std::string>{o.model.optimizations.value_or("performance")}
                                                 : std::vector<std::string>{"accuracy", "performance"};
  const bool real = weights != "random";
  fmt::print("\n{:<14} {:<20} {:>7} {:>7} {:>10} {:>10} {:>7}{}\n", "model", "mode", "top-1", "top-5", "mean KLD",
             "KLD p99", "t/s/u", real ? "   text top-1 / top-5" : "");
  auto print_row = [&](const std::string& mode, const runtime::LogitComparison& s, double tps) {
    fmt::print("{:<14} {:<20} {:>6.1f}% {:>6.1f}% {:>10.6f} {:>10.6f} {:>7.2f}", model_name, mode, 100 * s.top1(),
               100 * s.top5(), s.mean_kld(), s.kld_percentile(99), tps);
    if (real) fmt::print("   {:5.1f}% / {:5.1f}%", 100 * s.text_top1_rate(), 100 * s.text_top5_rate());
    fmt::print("\n");
    rows.push_back({{"mode", mode}, {"top1_agreement", s.top1()}, {"top5_agreement", s.top5()},
                    {"mean_kld", s.mean_kld()}, {"kld_p99", s.kld_percentile(99)}, {"tokens_per_s_per_user", tps},
                    {"text_top1", s.text_top1_rate()}, {"text_top5", s.text_top5_rate()}});
  };
  print_row("bf16", self, ref_tps);
  for (const std::string& mode : modes) {
    ModelOptions options = o.model;
    options.optimizations = mode;
    model::OpenedModel opened = model::open_model(options.request());
    runtime::LogitComparison stats;
    double tps = 0.0;
    teacher_forced(*opened.model, input, opened.precision.kv_cache,
                   [&](size_t pos, std::span<const float> row) { stats.add(reference[pos], row, ids[pos + 1]); }, tps,
                   o.decode_steps);
    print_row(opened.precision.mode, stats, tps);
  }
  const double mean_top1_prob = self.reference_mean_top1_prob();
  fmt::print("\nbf16 reference: mean top-1 probability {:.3f} (uniform would be {:.2g}){}\n", mean_top1_prob,
             1.0 / static_cast<double>(reference.front().log_probs.size()),
             real ? "" : "; random weights: agreement measures the formats' error, not language skill");
  if (o.json_out) {
    std::ofstream out(*o.json_out);
    check(static_cast<bool>(out), "cannot write {}", *o.json_out);
    out << nlohmann::json{{"model", model_name}, {"weights", weights}, {"tokens", o.tokens},
                          {"text", text_path.filename().string()}, {"threads", thread_count()},
                          {"reference_mean_top1_prob", mean_top1_prob}, {"rows", rows}}
               .dump(2)
        << "\n";
  }
  return 0;
}

const CommandRegistrar kRegistrar{
    "accuracy", "top-1/top-5 agreement and KL divergence of each precision mode vs bf16, teacher-forced",
    [](CLI::App& app) {
      auto o = std::make_shared<AccuracyOptions>();
      o->model.add_to(app);
      app.add_option("--text", o->text, "text to run (default demo/texts/declaration_of_independence.txt)");
      app.add_option("--tokens", o->tokens, "positions to compare")->check(CLI::Range(int64_t{1}, int64_t{131071}))
          ->capture_default_str();
      app.add_option("--decode_steps", o->decode_steps, "decode steps timed after the text for t/s/u")
          ->check(CLI::NonNegativeNumber)
          ->capture_default_str();
      app.add_option("--tokenizer", o->tokenizer, "tokenizer.json or tokenizer.model");
      app.add_option("--json", o->json_out, "also write the table as JSON");
      app.add_option("--reference_kv_cache", o->reference_kv_cache,
                     "compare KV caches instead of modes: --kv_cache against this one (bf16 | f32 | q8), same weights")
          ->check(CLI::IsMember({"bf16", "f32", "q8"}));
      return [o] { return run_accuracy(*o); };
    }};

}  // namespace
}  // namespace llama3::apps

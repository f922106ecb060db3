#include "apps/demo_report.h"

#include <fmt/core.h>

#include <algorithm>
#include <numeric>

namespace llama3::apps {

using nlohmann::json;

std::vector<double> per_iteration_tsu(const std::vector<DemoIteration>& iterations) {
  std::vector<double> tsu;
  for (const auto& it : iterations) tsu.push_back(it.ms > 0 ? 1000.0 / it.ms : 0.0);
  return tsu;
}

namespace {

double mean(std::span<const double> v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// Mean tokens/s/user over a slice [lo, hi) of the run given as fractions.
double tsu_window(const std::vector<double>& tsu, double lo, double hi) {
  const auto n = static_cast<double>(tsu.size());
  const auto b = static_cast<size_t>(lo * n);
  const auto e = std::max(b + 1, static_cast<size_t>(hi * n));
  if (tsu.empty()) return 0.0;
  return mean(std::span(tsu).subspan(b, std::min(e, tsu.size()) - b));
}

}  // namespace

json summary_json(const DemoRun& run) {
  const auto tsu = per_iteration_tsu(run.iterations);
  // The first iteration is excluded from the mean (it includes one-time warm-up), as in the original.
  const std::span<const double> steady = tsu.size() > 1 ? std::span(tsu).subspan(1) : std::span<const double>(tsu);
  std::vector<double> ttft;
  for (const auto& u : run.users) {
    if (u.error.empty() && !u.result.generated.empty()) ttft.push_back(u.result.ttft_ms);
  }
  const auto& s = run.stats;
  json j = run.config;
  j["load_seconds"] = run.load_seconds;
  j["weight_cache"] = run.weight_cache;
  j["weight_cache_seconds"] = nullptr;  // no weight cache yet (the performance issue adds it)
  j["ttft_ms"] = ttft;
  j["ttft_ms_mean"] = mean(ttft);
  j["prefill_tokens"] = s.prefill_tokens;
  j["prefill_tokens_per_s"] = s.prefill_seconds > 0 ? static_cast<double>(s.prefill_tokens) / s.prefill_seconds : 0.0;
  j["decode_iterations"] = run.iterations.size();
  j["decode_tokens_per_s_per_user"] = mean(steady);
  j["decode_tokens_per_s"] = s.decode_seconds > 0 ? static_cast<double>(s.decode_tokens) / s.decode_seconds : 0.0;
  j["peak_rss_bytes"] = run.peak_rss;
  j["kv_blocks_used_peak"] = s.peak_blocks;
  j["kv_blocks_total"] = s.total_blocks;
  j["kv_blocks_used_end"] = s.blocks_used_end;
  j["kv_cache_bytes"] = s.kv_bytes;
  j["preemptions"] = s.preemptions;
  j["interrupted"] = run.interrupted.empty() ? json(nullptr) : json(run.interrupted);
  if (run.stress_test) {
    j["tsu_first_10pct"] = tsu_window(tsu, 0.0, 0.1);
    j["tsu_middle_10pct"] = tsu_window(tsu, 0.45, 0.55);
    j["tsu_last_10pct"] = tsu_window(tsu, 0.9, 1.0);
    j["rss_start_bytes"] = run.rss_start;
    j["rss_end_bytes"] = run.rss_end;
    int64_t recycles = 0;
    for (const auto& u : run.users) recycles += u.result.recycles;
    j["recycles"] = recycles;
    j["logits_checked"] = s.logits_checked;
    j["logits_nonfinite"] = s.logits_nonfinite;
  }
  return j;
}

json report_json(const DemoRun& run) {
  json users = json::array();
  for (size_t i = 0; i < run.users.size(); ++i) {
    const DemoUser& u = run.users[i];
    users.push_back({{"user", i},
                     {"prompt_index", u.prompt_index},
                     {"prompt", u.prompt},
                     {"prompt_tokens", u.prompt_tokens},
                     {"images", u.images.size()},
                     {"generated_tokens", u.result.generated},
                     {"text", u.text},
                     {"ttft_ms", u.result.ttft_ms},
                     {"stop_reason", u.error.empty() ? u.result.stop_reason : "error"},
                     {"error", u.error},
                     {"preemptions", u.result.preemptions},
                     {"recycles", u.result.recycles}});
  }
  json iterations = json::array();
  for (const auto& it : run.iterations) {
    iterations.push_back({{"iteration", it.iteration},
                          {"ms", it.ms},
                          {"active_users", it.active_users},
                          {"prefill_tokens", it.prefill_tokens},
                          {"tokens_per_s_per_user", it.ms > 0 ? 1000.0 / it.ms : 0.0}});
  }
  json rss = json::array();
  for (const RssSample& r : run.rss_samples) {
    rss.push_back({{"iteration", r.iteration}, {"seconds", r.seconds}, {"rss_bytes", r.rss_bytes}});
  }
  return {{"summary", summary_json(run)}, {"users", users}, {"iterations", iterations}, {"rss_samples", rss}};
}

void print_summary(const DemoRun& run) {
  const json s = summary_json(run);
  const double gib = 1024.0 * 1024.0 * 1024.0;
  fmt::print("\n=== Summary ===\n");
  fmt::print("model {} | weights {} | layers {} | batch {} | threads {} | mode {} | kv {}\n",
             s["model"].get<std::string>(), s["weights"].get<std::string>(), s["layers"].get<int64_t>(),
             s["batch_size"].get<int>(), s["threads"].get<int>(), s["mode"].get<std::string>(),
             s["paged_attention"].get<bool>() ? "paged" : "contiguous");
  fmt::print("load time                 {:.2f} s (weight cache: {})\n", run.load_seconds, run.weight_cache);
  fmt::print("time to first token       mean {:.1f} ms over {} users\n", s["ttft_ms_mean"].get<double>(),
             s["ttft_ms"].size());
  fmt::print("prefill                   {} tokens @ {:.1f} tok/s\n", s["prefill_tokens"].get<int64_t>(),
             s["prefill_tokens_per_s"].get<double>());
  fmt::print("decode                    {:.2f} tok/s/user (mean of {} iterations, first excluded), {:.1f} tok/s aggregate\n",
             s["decode_tokens_per_s_per_user"].get<double>(), s["decode_iterations"].get<size_t>(),
             s["decode_tokens_per_s"].get<double>());
  fmt::print("peak RSS                  {:.2f} GiB\n", static_cast<double>(run.peak_rss) / gib);
  fmt::print("KV cache                  {:.3f} GiB of {} ({}); {} blocks used at peak of {}{}\n",
             static_cast<double>(s["kv_cache_bytes"].get<size_t>()) / gib, s.value("kv_cache", "?"),
             s.value("kv_pool", "?"), s["kv_blocks_used_peak"].get<int64_t>(), s["kv_blocks_total"].get<int64_t>(),
             s["preemptions"].get<int64_t>() ? fmt::format(", {} preemptions", s["preemptions"].get<int64_t>()) : "");
  if (!run.interrupted.empty()) {
    size_t cut = 0;
    for (const auto& u : run.users) cut += u.result.stop_reason == "interrupted" ? 1 : 0;
    fmt::print("interrupted               by {}: {} users cut short; the figures cover the run until then\n",
               run.interrupted, cut);
  }
  if (run.stress_test) {
    fmt::print("stress: tok/s/user first 10% {:.2f}, middle {:.2f}, last 10% {:.2f}; {} recycles; RSS {:.3f} -> {:.3f} GiB\n",
               s["tsu_first_10pct"].get<double>(), s["tsu_middle_10pct"].get<double>(),
               s["tsu_last_10pct"].get<double>(), s["recycles"].get<int64_t>(),
               static_cast<double>(run.rss_start) / gib, static_cast<double>(run.rss_end) / gib);
    fmt::print("stress: NaN/Inf checks {} rows, {} failed; KV blocks in use at the end {}\n",
               s["logits_checked"].get<int64_t>(), s["logits_nonfinite"].get<int64_t>(),
               s["kv_blocks_used_end"].get<int64_t>());
  }
}

}  // namespace llama3::apps

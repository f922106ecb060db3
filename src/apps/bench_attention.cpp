#include "apps/bench_attention.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/timer.h"
#include "kernels/attention.h"

namespace llama3::apps {

namespace {

// Calls fn repeatedly for about `seconds` (at least twice) and returns seconds per call.
template <typename Fn>
double seconds_per_call(Fn&& fn, double seconds = 0.3) {
  fn();  // warm-up
  const Timer t;
  int64_t calls = 0;
  do {
    fn();
    ++calls;
  } while (t.seconds() < seconds || calls < 2);
  return t.seconds() / static_cast<double>(calls);
}

}  // namespace

nlohmann::json bench_attention(const model::LlamaModel& m, const runtime::SequenceRunner& runner, int64_t chunk,
                               double bandwidth, double fma_peak_gflops, const RateMeasure& measure) {
  const model::ModelConfig& c = m.config();
  const model::KvCache& cache = runner.cache();
  const int64_t context = runner.length(0);
  const int64_t q_width = c.n_heads * c.head_dim;
  chunk = std::min(chunk, context);
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(chunk * q_width)), out(q.size());
  for (auto& x : q) x = dist(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const double kv_bytes = static_cast<double>(context) *
                          static_cast<double>(kernels::kv_bytes_per_position(cache.dtype(), c.n_kv_heads, c.head_dim));
  nlohmann::json j = {{"context", context}, {"kv_cache", kernels::kv_dtype_name(cache.dtype())},
                      {"kv_bytes_per_layer", kv_bytes}};

  fmt::print("\nattention at context {} ({} KV, {:.1f} MB per layer), kernel alone on the model's cache:\n", context,
             kernels::kv_dtype_name(cache.dtype()), kv_bytes / 1e6);
  nlohmann::json layers = nlohmann::json::array();
  double sum_best = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const kernels::AttentionSequence seq{0, 1, context - 1, runner.block_table(0)};
    const kernels::AttentionBatch batch{q.data(), out.data(), c.n_heads, &cache.layer(l), scale, {&seq, 1}};
    const auto [best, median] = measure([&] { return kv_bytes / seconds_per_call([&] { kernels::attention(batch); }); });
    fmt::print("  layer {:>2} decode: {:7.3f} ms, KV read at {:5.1f} GB/s best ({:.1f} median) = {:3.0f}% of the read "
               "bandwidth\n",
               l, 1e3 * kv_bytes / best, best / 1e9, median / 1e9, 100 * best / bandwidth);
    layers.push_back({{"layer", l}, {"ms", 1e3 * kv_bytes / best}, {"gb_per_s", {{"best", best / 1e9}, {"median", median / 1e9}}},
                      {"fraction_of_bandwidth", best / bandwidth}});
    sum_best += best;
  }
  const double mean = sum_best / static_cast<double>(c.n_layers);
  fmt::print("  decode attention, mean of the layers' best: {:.1f} GB/s = {:.0f}% of {:.1f} GB/s; {:.2f} ms per token "
             "for {} layers\n",
             mean / 1e9, 100 * mean / bandwidth, bandwidth / 1e9, 1e3 * kv_bytes / mean * static_cast<double>(c.n_layers),
             c.n_layers);
  j["decode_layers"] = layers;
  j["decode_fraction_of_bandwidth"] = mean / bandwidth;

  // The chunk's tokens at positions context - chunk .. context - 1 see every earlier position.
  const kernels::AttentionSequence seq{0, chunk, context - chunk, runner.block_table(0)};
  const kernels::AttentionBatch batch{q.data(), out.data(), c.n_heads, &cache.layer(0), scale, {&seq, 1}};
  const double keys = static_cast<double>(chunk) * static_cast<double>(context - chunk) +
                      static_cast<double>(chunk) * static_cast<double>(chunk + 1) / 2;
  const double flops = 4.0 * static_cast<double>(c.head_dim) * static_cast<double>(c.n_heads) * keys;
  const auto [best, median] = measure([&] { return flops / seconds_per_call([&] { kernels::attention(batch); }) / 1e9; });
  fmt::print("  prefill chunk of {} at the end (layer 0): {:.1f} GFLOP/s best ({:.1f} median) = {:.0f}% of the fp32 "
             "FMA peak; {:.1f} ms per layer\n",
             chunk, best, median, 100 * best / fma_peak_gflops, 1e3 * flops / 1e9 / best);
  j["prefill"] = {{"chunk", chunk}, {"gflops", {{"best", best}, {"median", median}}},
                  {"fraction_of_fp32_fma_peak", best / fma_peak_gflops}};
  return j;
}

}  // namespace llama3::apps

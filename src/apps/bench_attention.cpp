#include "apps/bench_attention.h"

#include <fmt/core.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/timer.h"
#include "kernels/attention.h"
#include "kernels/memory_bandwidth.h"

namespace llama3::apps {

namespace {

// Calls fn repeatedly for about `seconds` (at least twice, after one warm-up call) and returns
// seconds per call.
template <typename Fn>
double seconds_per_call(Fn&& fn, double seconds = 0.3) {
  fn();
  const Timer t;
  int64_t calls = 0;
  do {
    fn();
    ++calls;
  } while (t.seconds() < seconds || calls < 2);
  return t.seconds() / static_cast<double>(calls);
}

// Pushes everything out of the caches by reading a buffer twice the size of the last-level cache
// (64 MiB at least, 1 GiB at most). A decode step finds each layer's KV cache in memory: the
// previous token read 15 other layers and all the weights since. Timing the same layer over and
// over instead reads it from L3 wherever it fits (this machine's 480 MiB L3 holds a 32k layer's
// 67 MB): such a run printed 102% of the DRAM read bandwidth.
class CacheScrubber {
 public:
  CacheScrubber() : buffer_(bytes(), std::byte{1}) {}
  void operator()() { sink_ = kernels::read_bytes_scalar(buffer_.data(), buffer_.size()); }

 private:
  static size_t bytes() {
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    const size_t twice_l3 = 2 * static_cast<size_t>(std::max(l3, 0L));
    const size_t want = std::clamp<size_t>(twice_l3, size_t{64} << 20, size_t{1} << 30);
    return want / 512 * 512;  // the read loop's unit
  }
  std::vector<std::byte> buffer_;
  volatile uint64_t sink_ = 0;  // keeps the reads observable
};

// Seconds per call of fn on cold caches: scrubbed before every call, the scrub not timed; calls
// for about `seconds` of kernel time, at least three, and for at most `max_wall` seconds with the
// scrubs (a short context's call takes microseconds, each scrub milliseconds).
template <typename Fn>
double cold_seconds_per_call(Fn&& fn, CacheScrubber& scrub, double seconds = 0.02, double max_wall = 0.5) {
  double total = 0.0;
  int64_t calls = 0;
  const Timer wall;
  do {
    scrub();
    const Timer t;
    fn();
    total += t.seconds();
    ++calls;
  } while (calls < 3 || (total < seconds && wall.seconds() < max_wall));
  return total / static_cast<double>(calls);
}

}  // namespace

AttentionRun measure_attention(const model::LlamaModel& m, const runtime::SequenceRunner& runner, int64_t chunk,
                               int reps, const Hygiene& hygiene) {
  const model::ModelConfig& c = m.config();
  const model::KvCache& cache = runner.cache();
  AttentionRun run;
  run.context = runner.length(0);
  run.chunk = std::min(chunk, run.context);
  run.kv_cache = kernels::kv_dtype_name(cache.dtype());
  run.kv_bytes_per_layer = static_cast<double>(run.context) * static_cast<double>(kernels::kv_bytes_per_position(
                                                                  cache.dtype(), c.n_kv_heads, c.head_dim));
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(run.chunk * c.n_heads * c.head_dim)), out(q.size());
  for (auto& x : q) x = dist(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  CacheScrubber scrub;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const kernels::AttentionSequence seq{0, 1, run.context - 1, runner.block_table(0)};
    const kernels::AttentionBatch batch{q.data(), out.data(), c.n_heads, &cache.layer(l), scale, {&seq, 1}};
    run.decode.push_back(measure(reps, hygiene, [&] {
      return run.kv_bytes_per_layer / cold_seconds_per_call([&] { kernels::attention(batch); }, scrub);
    }));
  }
  // Prefill reads each K/V block once per tile of queries, so the chunk runs from the caches by
  // design: timed warm, as in a prefill. The chunk's tokens at positions context - chunk ..
  // context - 1 see every earlier position.
  const kernels::AttentionSequence seq{0, run.chunk, run.context - run.chunk, runner.block_table(0)};
  const kernels::AttentionBatch batch{q.data(), out.data(), c.n_heads, &cache.layer(0), scale, {&seq, 1}};
  const double keys = static_cast<double>(run.chunk) * static_cast<double>(run.context - run.chunk) +
                      static_cast<double>(run.chunk) * static_cast<double>(run.chunk + 1) / 2;
  run.prefill_flops = 4.0 * static_cast<double>(c.head_dim) * static_cast<double>(c.n_heads) * keys;
  run.prefill = measure(reps, hygiene, [&] {
    return run.prefill_flops / seconds_per_call([&] { kernels::attention(batch); });
  });
  return run;
}

nlohmann::json print_attention(const AttentionRun& run, const Limits& limits) {
  const double bw = limits.bandwidth;
  fmt::print("\nattention at context {} ({} KV, {:.1f} MB per layer), the kernel alone on the model's cache (decode: "
             "caches scrubbed before each call, so the KV comes from memory as in a decode step):\n",
             run.context, run.kv_cache, run.kv_bytes_per_layer / 1e6);
  nlohmann::json layers = nlohmann::json::array();
  double sum = 0;
  for (size_t l = 0; l < run.decode.size(); ++l) {
    const Stats& s = run.decode[l];
    fmt::print("  layer {:>2} decode: {:7.3f} ms, KV read at {:5.1f} GB/s best ({:.1f} median) = {:3.0f}% of the read "
               "bandwidth{}\n",
               l, 1e3 * run.kv_bytes_per_layer / s.best(), s.best() / 1e9, s.median() / 1e9, 100 * s.best() / bw,
               redone(s));
    layers.push_back({{"layer", l}, {"ms", 1e3 * run.kv_bytes_per_layer / s.best()}, {"bytes_per_s", s.to_json()},
                      {"fraction_of_bandwidth", s.best() / bw}});
    sum += s.best();
  }
  const double mean = sum / static_cast<double>(run.decode.size());
  fmt::print("  decode, mean of the layers' best: {:.1f} GB/s = {:.0f}% of {:.1f} GB/s; {:.2f} ms per token for {} "
             "layers\n",
             mean / 1e9, 100 * mean / bw, bw / 1e9,
             1e3 * run.kv_bytes_per_layer / mean * static_cast<double>(run.decode.size()), run.decode.size());
  const double fma = limits.peak.fp32_fma_gflops * 1e9;
  fmt::print("  prefill chunk of {} at the end (layer 0): {:.1f} GFLOP/s best ({:.1f} median) = {:.0f}% of the fp32 "
             "FMA peak; {:.1f} ms per layer{}\n",
             run.chunk, run.prefill.best() / 1e9, run.prefill.median() / 1e9, 100 * run.prefill.best() / fma,
             1e3 * run.prefill_flops / run.prefill.best(), redone(run.prefill));
  return {{"context", run.context}, {"kv_cache", run.kv_cache}, {"kv_bytes_per_layer", run.kv_bytes_per_layer},
          {"decode_layers", layers}, {"decode_fraction_of_bandwidth", mean / bw},
          {"prefill", {{"chunk", run.chunk}, {"flops", run.prefill_flops}, {"flops_per_s", run.prefill.to_json()},
                       {"fraction_of_fp32_fma_peak", run.prefill.best() / fma}}}};
}

}  // namespace llama3::apps

#include "apps/bench_measure.h"

#include <fmt/core.h>

#include "core/parallel.h"
#include "core/timer.h"
#include "kernels/memory_bandwidth.h"

namespace llama3::apps {

double Stats::best() const { return values.empty() ? 0.0 : *std::max_element(values.begin(), values.end()); }

double Stats::median() const {
  if (values.empty()) return 0.0;
  std::vector<double> v = values;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::string redone(const Stats& s) { return s.redone ? fmt::format(", {} disturbed reps redone", s.redone) : ""; }

nlohmann::json Stats::to_json() const {
  return {{"best", best()}, {"median", median()}, {"all", values}, {"redone", redone}};
}

void Limits::raise_to(const Limits& o) {
  bandwidth = std::max(bandwidth, o.bandwidth);
  peak.fp32_fma_gflops = std::max(peak.fp32_fma_gflops, o.peak.fp32_fma_gflops);
  peak.int8_dot_gops = std::max(peak.int8_dot_gops, o.peak.int8_dot_gops);
  peak.bf16_dot_gflops = std::max(peak.bf16_dot_gflops, o.peak.bf16_dot_gflops);
}

Limits measure_limits(const Hygiene& h) {
  Limits l;
  // Each probe is its own repetition, so a disturbed one is redone alone.
  measure(1, h, [&] { return l.bandwidth = kernels::measure_read_bandwidth(size_t{1} << 30, 5); });
  measure(1, h, [&] { return (l.peak = kernels::measure_compute_peak()).fp32_fma_gflops; });
  return l;
}

double Ops::seconds_at(const kernels::ComputePeak& p) const {
  const double int8_peak = p.int8_dot_gops > 0 ? p.int8_dot_gops : p.fp32_fma_gflops;
  return bf16 / (p.fp32_fma_gflops * 1e9) + int8 / (int8_peak * 1e9);
}

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

double measure_fork_join_us() {
  double best = 1e30;
  for (int run = 0; run < 5; ++run) {
    const Timer t;
    for (int i = 0; i < 2000; ++i) parallel_for(static_cast<size_t>(thread_count()), [](size_t, size_t) {});
    best = std::min(best, t.seconds() * 1e6 / 2000);
  }
  return best;
}

}  // namespace llama3::apps

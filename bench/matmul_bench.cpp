// Kernel benchmarks: the bf16 matrix product at Llama 3.2 1B's shapes, per ISA, batch 1..32.
// Reports weight bytes/s (batch-1 decode is bandwidth bound) and FLOP/s (large batches are
// compute bound). Run: build/llama3_bench --benchmark_filter=Matmul
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"

namespace {

using namespace llama3;

void BM_Matmul(benchmark::State& state) {
  const auto isa = static_cast<kernels::Isa>(state.range(0));
  if (isa > kernels::detected_isa()) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int64_t rows = state.range(1), k = state.range(2), batch = state.range(3);
  std::vector<uint16_t> w(static_cast<size_t>(rows * k));
  std::vector<float> x(static_cast<size_t>(batch * k)), y(static_cast<size_t>(batch * rows));
  std::mt19937 rng(1);
  for (auto& v : w) v = f32_to_bf16(static_cast<float>(rng() % 1000) / 1000.0f - 0.5f);
  for (auto& v : x) v = static_cast<float>(rng() % 1000) / 1000.0f - 0.5f;
  const kernels::Isa saved = kernels::active_isa();
  kernels::set_active_isa(isa);
  const kernels::MatmulJob job{w.data(), rows, k, x.data(), k, y.data(), rows, batch};
  for (auto _ : state) {
    kernels::matmul_bf16(job);
    benchmark::DoNotOptimize(y.data());
  }
  kernels::set_active_isa(saved);
  state.SetBytesProcessed(state.iterations() * rows * k * 2);
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(2 * rows * k * batch) * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(std::string(kernels::isa_name(isa)));
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int isa : {0, 1, 2}) {
    for (int64_t batch : {1, 8, 32}) {
      b->Args({isa, 8192, 2048, batch});  // 1B gate/up projection
      b->Args({isa, 2048, 8192, batch});  // 1B down projection
    }
  }
}

BENCHMARK(BM_Matmul)->Apply(shapes)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

// Attention kernel benchmarks at Llama 3.2 1B's shape (32 query heads, 8 kv heads, head_dim 64,
// blocks of 32), all threads:
//  - decode: one token against `context` cached positions; reports the KV bytes read per second
//    (decode attention is bandwidth bound at long context);
//  - prefill: a chunk of new tokens after `context - chunk` cached ones; reports GFLOP/s
//    (4 * head_dim flops per query head and visible key: q.k and p*v).
// Run: build/bench/llama3_bench --benchmark_filter=Attention
#include <benchmark/benchmark.h>

#include <numeric>
#include <random>
#include <vector>

#include "core/large_buffer.h"
#include "core/parallel.h"
#include "kernels/attention.h"
#include "kernels/cpu_features.h"

namespace {

using namespace llama3;
using kernels::KvDType;

constexpr int64_t kHeads = 32, kKv = 8, kHd = 64, kBlock = 32;

struct Cache {
  LargeBuffer k, v, ks, vs;
  std::vector<int32_t> table;
  kernels::KvPoolView view;
  Cache(KvDType dtype, int64_t positions) {
    const int64_t blocks = (positions + kBlock - 1) / kBlock;
    const size_t n = static_cast<size_t>(blocks * kBlock * kKv * kHd) * kernels::kv_element_bytes(dtype);
    k = LargeBuffer(n), v = LargeBuffer(n);
    ks = LargeBuffer(static_cast<size_t>(blocks * kBlock * kKv) * 4), vs = LargeBuffer(ks.size());
    view = {k.data(), v.data(), reinterpret_cast<float*>(ks.data()), reinterpret_cast<float*>(vs.data()), dtype,
            kKv,      kBlock,   kHd};
    table.resize(static_cast<size_t>(blocks));
    std::iota(table.begin(), table.end(), 0);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(kKv * kHd));
    for (int64_t t = 0; t < positions; ++t) {
      for (auto& x : row) x = dist(rng);
      kernels::kv_store(view, table, t, row.data(), row.data());
    }
  }
};

void run(benchmark::State& state, bool decode) {
  const auto isa = static_cast<kernels::Isa>(state.range(0));
  const auto dtype = static_cast<KvDType>(state.range(1));
  const int64_t context = state.range(2), chunk = decode ? 1 : state.range(3);
  if (isa > kernels::detected_isa()) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const Cache cache(dtype, context);
  std::vector<float> q(static_cast<size_t>(chunk * kHeads * kHd), 0.1f), out(q.size());
  std::mt19937 rng(2);
  for (auto& x : q) x = static_cast<float>(rng() % 1000) / 500.0f - 1.0f;
  const kernels::AttentionSequence seq{0, chunk, context - chunk, cache.table};
  const kernels::AttentionBatch batch{q.data(), out.data(), kHeads, &cache.view, 0.125f, {&seq, 1}};
  const kernels::Isa saved = kernels::active_isa();
  kernels::set_active_isa(isa);
  for (auto _ : state) {
    kernels::attention(batch);
    benchmark::DoNotOptimize(out.data());
  }
  kernels::set_active_isa(saved);
  const double bytes = static_cast<double>(context) * static_cast<double>(kernels::kv_bytes_per_position(dtype, kKv, kHd));
  // Visible keys summed over the chunk's tokens (causal).
  const double keys = static_cast<double>(chunk) * static_cast<double>(context - chunk) +
                      static_cast<double>(chunk) * static_cast<double>(chunk + 1) / 2;
  const double flops = 4.0 * kHd * kHeads * keys;
  state.counters["KV_GB/s"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * static_cast<double>(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(std::string(kernels::isa_name(isa)) + " " + std::string(kernels::kv_dtype_name(dtype)) + " " +
                 std::to_string(thread_count()) + " threads");
}

void BM_AttentionDecode(benchmark::State& state) { run(state, true); }
void BM_AttentionPrefill(benchmark::State& state) { run(state, false); }

void decode_shapes(benchmark::internal::Benchmark* b) {
  for (int isa : {1, 2}) {
    for (int dtype : {0, 1, 2}) {
      for (int64_t context : {1024, 4096, 32768}) b->Args({isa, dtype, context});
    }
  }
}

void prefill_shapes(benchmark::internal::Benchmark* b) {
  for (int isa : {1, 2}) {
    for (int dtype : {0, 2}) {
      b->Args({isa, dtype, 4096, 256});
      b->Args({isa, dtype, 32768, 256});
    }
  }
}

BENCHMARK(BM_AttentionDecode)->Apply(decode_shapes)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AttentionPrefill)->Apply(prefill_shapes)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

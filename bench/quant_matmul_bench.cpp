// Integer (Q8_0 / Q4_0) matrix products at Llama 3.2 1B's shapes, batch 1..512, 1 and 2 threads,
// next to the machine's limits measured in the same run: all-thread read bandwidth (batch-1
// decode streams every weight once) and the register-only vpdpbusd peak (large batches).
// Counters: GB/s = packed weight bytes per second; GOP/s = 2 * rows * k * batch per second;
// of_bw = GB/s / read bandwidth; of_peak = GOP/s / vpdpbusd peak (both fractions of the
// all-thread limits, so a 1-thread row reads about half). This machine's read bandwidth moves
// by +-20% from minute to minute (other tenants), so batch <= 8 rows measure it again right
// before they run (best of 5 passes over 1 GiB, all threads) and report it as read_GB/s.
// Weights are cold, as in a forward pass: the benchmark cycles through enough copies of the
// matrix to overflow the L3 cache.
// Run: build/bench/llama3_bench --benchmark_filter='QMatmul|ReadBandwidth|ComputePeak|QuantizeActivations'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/parallel.h"
#include "kernels/activation_quant.h"
#include "kernels/compute_peak.h"
#include "kernels/cpu_features.h"
#include "kernels/memory_bandwidth.h"
#include "kernels/quant_matmul.h"

namespace {

using namespace llama3;
using kernels::WeightFormat;

struct Limits {
  double read_bytes_per_s;
  kernels::ComputePeak peak;
};

// fn() with every core.
template <typename Fn>
auto with_all_cores(Fn fn) {
  const int saved = thread_count();
  set_thread_count(omp_get_num_procs());
  const auto r = fn();
  set_thread_count(saved);
  return r;
}

double read_bandwidth(int passes) {
  return with_all_cores([&] { return kernels::measure_read_bandwidth(size_t{1} << 30, passes); });
}

// Measured once per run.
const Limits& limits() {
  static const Limits l{read_bandwidth(10), with_all_cores([] { return kernels::measure_compute_peak(0.2); })};
  return l;
}

// Random ggml blocks (scales ~1e-2, every quant byte) packed, in enough copies to exceed L3.
struct Weights {
  std::vector<std::vector<std::byte>> copies;
  int64_t rows, cols;
};

const Weights& weights(WeightFormat f, int64_t rows, int64_t cols) {
  static std::map<std::tuple<WeightFormat, int64_t, int64_t>, std::unique_ptr<Weights>> cache;
  auto& slot = cache[{f, rows, cols}];
  if (!slot) {
    const size_t block = kernels::ggml_block_bytes(f);
    std::vector<std::byte> ggml(static_cast<size_t>(rows * cols / 32) * block);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < ggml.size(); i += 8) {  // xorshift: fast enough for 280 MB
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      std::memcpy(ggml.data() + i, &s, std::min<size_t>(8, ggml.size() - i));
    }
    for (size_t i = 0; i < ggml.size(); i += block) {
      const uint16_t h = f32_to_f16(0.01f + static_cast<float>(i % 97) * 1e-4f);
      std::memcpy(ggml.data() + i, &h, 2);
    }
    slot = std::make_unique<Weights>();
    slot->rows = rows;
    slot->cols = cols;
    const size_t bytes = kernels::packed_bytes(f, rows, cols);
    const size_t copies = std::max<size_t>(1, (size_t{256} << 20) / bytes + 1);
    for (size_t c = 0; c < copies; ++c) {
      slot->copies.emplace_back(bytes);
      kernels::pack_ggml_rows(f, ggml, rows, cols, slot->copies.back());
    }
  }
  return *slot;
}

void BM_QMatmul(benchmark::State& state) {
  const auto f = static_cast<WeightFormat>(state.range(0));
  const int64_t rows = state.range(1), k = state.range(2), batch = state.range(3);
  const int threads = static_cast<int>(state.range(4));
  const auto isa = static_cast<kernels::Isa>(state.range(5));
  if (isa > kernels::detected_isa()) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const Limits& lim = limits();
  const Weights& w = weights(f, rows, k);
  const double bandwidth = batch <= 8 ? read_bandwidth(5) : lim.read_bytes_per_s;
  std::vector<float> x(static_cast<size_t>(batch * k));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  kernels::QuantizedActivations qx;
  kernels::quantize_activations(x.data(), k, batch, k, qx);
  std::vector<float> y(static_cast<size_t>(batch * rows));
  const int saved_threads = thread_count();
  const kernels::Isa saved_isa = kernels::active_isa();
  set_thread_count(threads);
  kernels::set_active_isa(isa);
  size_t copy = 0;
  for (auto _ : state) {
    const kernels::PackedMatrix m{f, w.copies[copy].data(), rows, k};
    kernels::matmul_q(kernels::QMatmulJob{m, &qx, y.data(), rows});
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % w.copies.size();
  }
  kernels::set_active_isa(saved_isa);
  set_thread_count(saved_threads);
  const double bytes = static_cast<double>(kernels::packed_bytes(f, rows, k));
  const double ops = 2.0 * static_cast<double>(rows * k * batch);
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["GOP/s"] = benchmark::Counter(ops * static_cast<double>(state.iterations()) / 1e9,
                                               benchmark::Counter::kIsRate);
  state.counters["of_bw"] = benchmark::Counter(bytes * static_cast<double>(state.iterations()) / bandwidth,
                                               benchmark::Counter::kIsRate);
  state.counters["read_GB/s"] = bandwidth / 1e9;
  if (lim.peak.int8_dot_gops > 0) {
    state.counters["of_peak"] = benchmark::Counter(
        ops * static_cast<double>(state.iterations()) / 1e9 / lim.peak.int8_dot_gops, benchmark::Counter::kIsRate);
  }
  state.SetLabel(std::string(kernels::weight_format_name(f)) + " " + std::string(kernels::isa_name(isa)));
}

void shapes(benchmark::internal::Benchmark* b) {
  const int isa = static_cast<int>(kernels::detected_isa());
  for (int f : {1, 2}) {  // Q8_0, Q4_0
    for (int64_t batch : {1, 8, 32, 512}) {
      for (int threads : {1, 2}) {
        b->Args({f, 2048, 2048, batch, threads, isa});    // wq, wo
        b->Args({f, 512, 2048, batch, threads, isa});     // wk, wv
        b->Args({f, 8192, 2048, batch, threads, isa});    // w1, w3
        b->Args({f, 2048, 8192, batch, threads, isa});    // w2
        b->Args({f, 128256, 2048, batch, threads, isa});  // LM head
      }
    }
  }
  for (int f : {1, 2}) {  // the AVX2 kernel (CPUs without AVX-512 VNNI), on one shape
    for (int64_t batch : {1, 32}) b->Args({f, 8192, 2048, batch, 2, static_cast<int>(kernels::Isa::Avx2)});
  }
}

BENCHMARK(BM_QMatmul)->Apply(shapes)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t batch = state.range(0), k = state.range(1);
  std::vector<float> x(static_cast<size_t>(batch * k));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  kernels::QuantizedActivations qx(batch, k);
  for (auto _ : state) {
    kernels::quantize_activations(x.data(), k, batch, k, qx);
    benchmark::DoNotOptimize(qx.q(0));
  }
  state.SetBytesProcessed(batch * k * 4 * state.iterations());
}

BENCHMARK(BM_QuantizeActivations)->Args({1, 2048})->Args({1, 8192})->Args({512, 2048})->UseRealTime();

// The limits themselves, as rows of the report.
void BM_ReadBandwidth(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(limits().read_bytes_per_s);
  state.counters["GB/s"] = limits().read_bytes_per_s / 1e9;
  state.counters["threads"] = omp_get_num_procs();
}

BENCHMARK(BM_ReadBandwidth)->Iterations(1);

void BM_ComputePeak(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(limits().peak.threads);
  const kernels::ComputePeak& p = limits().peak;
  state.counters["fp32_fma_GFLOP/s"] = p.fp32_fma_gflops;
  state.counters["vpdpbusd_GOP/s"] = p.int8_dot_gops;
  state.counters["vdpbf16ps_GFLOP/s"] = p.bf16_dot_gflops;
  state.counters["threads"] = p.threads;
}

BENCHMARK(BM_ComputePeak)->Iterations(1);

}  // namespace

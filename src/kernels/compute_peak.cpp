#include "kernels/compute_peak.h"

#include <algorithm>
#include <atomic>

#include "core/parallel.h"
#include "core/timer.h"
#include "kernels/cpu_features.h"

namespace llama3::kernels {

namespace {

// Best rate of three timed runs of `loop` on every thread; `ops` = operations per iteration per
// thread. The iteration count is calibrated on one thread first so each run lasts ~`seconds`.
template <typename Loop>
double peak_rate(Loop loop, double ops, double seconds) {
  std::atomic<double> sink{0.0};
  int64_t iterations = 1 << 16;
  for (;;) {  // calibrate
    const Timer timer;
    sink = sink + static_cast<double>(loop(iterations));
    if (timer.seconds() > seconds / 8 || iterations > (int64_t{1} << 40)) {
      iterations = static_cast<int64_t>(static_cast<double>(iterations) * seconds / std::max(timer.seconds(), 1e-9));
      break;
    }
    iterations *= 4;
  }
  const int threads = thread_count();
  double best = 0.0;
  for (int run = 0; run < 3; ++run) {
    const Timer timer;
    parallel_for(static_cast<size_t>(threads), [&](size_t, size_t) {
      sink = sink + static_cast<double>(loop(iterations));
    });
    best = std::max(best, ops * static_cast<double>(iterations) * threads / timer.seconds());
  }
  return best;
}

}  // namespace

ComputePeak measure_compute_peak(double seconds) {
  ComputePeak p;
  p.threads = thread_count();
  const Isa isa = detected_isa();
  if (isa == Isa::Avx512) {
    p.fp32_fma_gflops = peak_rate(fma_loop_avx512, kPeakAccumulators * 32.0, seconds) / 1e9;
    if (has_avx512_vnni()) p.int8_dot_gops = peak_rate(dpbusd_loop_avx512, kPeakAccumulators * 128.0, seconds) / 1e9;
    if (has_avx512_bf16()) p.bf16_dot_gflops = peak_rate(dpbf16_loop_avx512, kPeakAccumulators * 64.0, seconds) / 1e9;
  } else if (isa == Isa::Avx2) {
    p.fp32_fma_gflops = peak_rate(fma_loop_avx2, kPeakAccumulators * 16.0, seconds) / 1e9;
  }
  return p;
}

}  // namespace llama3::kernels

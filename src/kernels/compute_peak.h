#pragma once
// The machine's arithmetic limits, for judging compute-bound kernels (batched products): each
// probe runs a register-only loop of one instruction on many independent accumulators on every
// thread, so the figure is the issue-rate peak, not a memory or latency figure.
#include <cstdint>

namespace llama3::kernels {

struct ComputePeak {
  int threads = 0;
  double fp32_fma_gflops = 0.0;   // vfmadd231ps (zmm on AVX-512, ymm on AVX2): 2 flops per lane
  double int8_dot_gops = 0.0;     // vpdpbusd zmm: 64 multiply-adds = 128 ops; 0 without AVX-512 VNNI
  double bf16_dot_gflops = 0.0;   // vdpbf16ps zmm: 32 multiply-adds = 64 flops; 0 without AVX512_BF16
};

// Runs each available probe for about `seconds` (best of three runs) with all threads.
ComputePeak measure_compute_peak(double seconds = 0.2);

// The register loops behind it: `iterations` rounds of kPeakAccumulators independent
// instructions on one thread; the return value only keeps the work observable.
inline constexpr int kPeakAccumulators = 12;
float fma_loop_avx2(int64_t iterations);
float fma_loop_avx512(int64_t iterations);
int32_t dpbusd_loop_avx512(int64_t iterations);
float dpbf16_loop_avx512(int64_t iterations);

}  // namespace llama3::kernels

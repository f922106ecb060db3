// AVX2 register-only fp32 FMA probe loop (compute_peak.h).
#include <immintrin.h>

#include "kernels/compute_peak.h"
#include "kernels/compute_peak_loop.h"

namespace llama3::kernels {

float fma_loop_avx2(int64_t iterations) {
  const __m256 a = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(1e-7f);
  LLAMA3_PEAK_LOOP("vfmadd231ps", __m256, _mm256_set1_ps(0.5f), float);
}

}  // namespace llama3::kernels

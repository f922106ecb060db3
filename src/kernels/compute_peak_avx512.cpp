// AVX-512 register-only probe loops (compute_peak.h).
#include <immintrin.h>

#include "kernels/compute_peak.h"
#include "kernels/compute_peak_loop.h"

namespace llama3::kernels {


float fma_loop_avx512(int64_t iterations) {
  const __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-7f);
  LLAMA3_PEAK_LOOP("vfmadd231ps", __m512, _mm512_set1_ps(0.5f), float);
}

int32_t dpbusd_loop_avx512(int64_t iterations) {
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
  LLAMA3_PEAK_LOOP("vpdpbusd", __m512i, _mm512_set1_epi32(1), int32_t);
}

float dpbf16_loop_avx512(int64_t iterations) {
  const __m512i a = _mm512_set1_epi16(0x3f80), b = _mm512_set1_epi16(0x3400);  // bf16 1.0 and ~1.2e-7
  LLAMA3_PEAK_LOOP("vdpbf16ps", __m512, _mm512_set1_ps(0.5f), float);
}

}  // namespace llama3::kernels

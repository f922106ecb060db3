// AVX-512 activation quantization: one block of 32 values is two zmm registers.
#include <immintrin.h>

#include "kernels/activation_quant.h"

namespace llama3::kernels {

namespace {

// GCC 12's plain forms of several intrinsics (and the _mm512_reduce_* helpers built on them) start
// from _mm512_undefined_*() and trip -Wmaybe-uninitialized; the zero-masked forms with a full
// mask compile to the same instructions.
constexpr __mmask16 kAll = 0xffff;

float max_of(__m512 v) {
  const __m256 h = _mm256_max_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

int32_t sum_of(__m512i v) {
  const __m256i h = _mm256_add_epi32(_mm512_maskz_extracti32x8_epi32(0xff, v, 0),
                                     _mm512_maskz_extracti32x8_epi32(0xff, v, 1));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

// x / divisor clamped to [-127, 127] (min then max, as clamp_q), rounded to nearest even.
__m512i quantize16(__m512 x, __m512 divisor) {
  const __m512 v = _mm512_maskz_max_ps(kAll, _mm512_maskz_min_ps(kAll, _mm512_div_ps(x, divisor), _mm512_set1_ps(127.0f)),
                                       _mm512_set1_ps(-127.0f));
  return _mm512_maskz_cvt_roundps_epi32(kAll, v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

}  // namespace

void quantize_activation_rows_avx512(const float* x, int64_t ldx, QuantizedActivations& out, int64_t row_begin,
                                     int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* xr = x + r * ldx;
    int8_t* q = out.q(r);
    float* scales = out.scales(r);
    int32_t* sums = out.sums(r);
    for (int64_t b = 0; b < out.blocks(); ++b) {
      const __m512 x0 = _mm512_loadu_ps(xr + b * 32), x1 = _mm512_loadu_ps(xr + b * 32 + 16);
      const float amax = max_of(_mm512_maskz_max_ps(kAll, _mm512_abs_ps(x0), _mm512_abs_ps(x1)));
      const float d = amax / 127.0f;
      const __m512 divisor = _mm512_set1_ps(d != 0.0f ? d : 1.0f);
      const __m512i q0 = quantize16(x0, divisor), q1 = quantize16(x1, divisor);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32), _mm512_maskz_cvtepi32_epi8(kAll, q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16), _mm512_maskz_cvtepi32_epi8(kAll, q1));
      scales[b] = d;
      sums[b] = sum_of(_mm512_add_epi32(q0, q1));
    }
  }
}

}  // namespace llama3::kernels

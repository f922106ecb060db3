// AVX2 activation quantization: one block of 32 values is four ymm registers.
#include <immintrin.h>

#include "kernels/activation_quant.h"

namespace llama3::kernels {

namespace {

// Rounds to nearest even explicitly, then converts (exact: the values are integers in range).
__m256i quantize8(__m256 x, __m256 divisor) {
  const __m256 v = _mm256_max_ps(_mm256_min_ps(_mm256_div_ps(x, divisor), _mm256_set1_ps(127.0f)),
                                 _mm256_set1_ps(-127.0f));
  return _mm256_cvttps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

}  // namespace

void quantize_activation_rows_avx2(const float* x, int64_t ldx, QuantizedActivations& out, int64_t row_begin,
                                   int64_t row_end) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* xr = x + r * ldx;
    int8_t* q = out.q(r);
    for (int64_t b = 0; b < out.blocks(); ++b) {
      __m256 v[4];
      for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xr + b * 32 + i * 8);
      __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                               _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float d = _mm_cvtss_f32(m4) / 127.0f;
      const __m256 divisor = _mm256_set1_ps(d != 0.0f ? d : 1.0f);
      __m256i qi[4];
      for (int i = 0; i < 4; ++i) qi[i] = quantize8(v[i], divisor);
      // int32 -> int8 (no saturation: |q| <= 127); packs work per 128-bit lane, the permute
      // puts the four 32-bit groups back in order.
      const __m256i w = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32),
                          _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
      const __m256i s = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3]));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
      out.scales(r)[b] = d;
      out.sums(r)[b] = _mm_cvtsi128_si32(s4);
    }
  }
}

}  // namespace llama3::kernels

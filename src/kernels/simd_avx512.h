#pragma once
// Helpers shared by the AVX-512 kernel files (only included from *_avx512.cpp).
#include <immintrin.h>

namespace llama3::kernels::avx512 {

// GCC 12's plain forms of several intrinsics start from _mm512_undefined_*() and trip
// -Wuninitialized; the zero-masked forms with a full mask compile to the same instructions.

// Horizontal sum.
inline float hsum(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 16 bf16 values widened to fp32 (bf16 is the top half of an fp32).
inline __m512 widen_bf16(__m256i v) {
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, v), 16));
}

}  // namespace llama3::kernels::avx512

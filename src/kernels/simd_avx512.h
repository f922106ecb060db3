#pragma once
// The AVX-512 vector operations the shared kernel loops (matmul_tile.h, attention_loop.h) are
// written against: 16 fp32 lanes. Only included from *_avx512.cpp files (built with -mavx512*).
//
// GCC 12's plain forms of several intrinsics start from _mm512_undefined_*() and trip
// -Wuninitialized; the zero-masked forms with a full mask compile to the same instructions.
#include <immintrin.h>

#include <cstdint>

namespace llama3::kernels {

struct Avx512Vec {
  using Vec = __m512;
  static constexpr int64_t kWidth = 16;
  static __m512 zero() { return _mm512_setzero_ps(); }
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  // 16 bf16 values widened to fp32 (bf16 is the top half of an fp32).
  static __m512 load(const uint16_t* p) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, v), 16));
  }
  // 16 int8 values as fp32 (the 8-bit KV cache).
  static __m512 load(const int8_t* p) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm512_maskz_cvtepi32_ps(0xffff, _mm512_maskz_cvtepi8_epi32(0xffff, v));
  }
  static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(__m512 v) {
    const __m256 h = _mm256_max_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), _mm512_maskz_extractf32x8_ps(0xff, v, 1));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static __m512 set1(float v) { return _mm512_set1_ps(v); }
  static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
  // For vector_exp.h and the element-wise loops.
  static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
  static __m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
  static __m512 div(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }
  static __m512 min(__m512 a, __m512 b) { return _mm512_maskz_min_ps(0xffff, a, b); }
  static __m512 max(__m512 a, __m512 b) { return _mm512_maskz_max_ps(0xffff, a, b); }
  static __m512 round_even(__m512 v) {
    return _mm512_maskz_roundscale_ps(0xffff, v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-126, 127].
  static __m512 pow2(__m512 n) {
    const __m512i e = _mm512_add_epi32(_mm512_maskz_cvtps_epi32(0xffff, n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, e, 23));
  }
  // x * 2^n for integral n in [-126, 127], in one instruction: vscalefps rounds once, as the
  // multiplication by pow2(n) of the other ISAs does, so the results are the same bits.
  static __m512 times_pow2(__m512 x, __m512 n) { return _mm512_maskz_scalef_ps(0xffff, x, n); }
};

}  // namespace llama3::kernels

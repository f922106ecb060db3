// AVX2 attention: the shared loop on 8 fp32 lanes. head_dim not a multiple of 8 falls back to
// the scalar kernel.
#include <immintrin.h>

#include "kernels/attention_loop.h"

namespace llama3::kernels {
namespace {

struct Avx2Vec {
  using Vec = __m256;
  static constexpr int64_t kWidth = 8;
  static __m256 zero() { return _mm256_setzero_ps(); }
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 load(const uint16_t* p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  static __m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static __m256 set1(float v) { return _mm256_set1_ps(v); }
  static void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
};

}  // namespace

void attention_avx2(const AttentionArgs& args) {
  if (args.pool->head_dim % Avx2Vec::kWidth != 0) return attention_scalar(args);
  attention_for_pool<Avx2Vec>(args);
}

}  // namespace llama3::kernels

// AVX-512 attention: the shared loop on 16 fp32 lanes. head_dim not a multiple of 16 (no
// Llama 3 model) falls back to the scalar kernel.
#include <immintrin.h>

#include "kernels/attention_loop.h"
#include "kernels/simd_avx512.h"

namespace llama3::kernels {
namespace {

struct Avx512Vec {
  using Vec = __m512;
  static constexpr int64_t kWidth = 16;
  static __m512 zero() { return _mm512_setzero_ps(); }
  static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load(const uint16_t* p) {
    return avx512::widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(__m512 v) { return avx512::hsum(v); }
  static __m512 set1(float v) { return _mm512_set1_ps(v); }
  static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
};

}  // namespace

void attention_avx512(const AttentionArgs& args) {
  if (args.pool->head_dim % Avx512Vec::kWidth != 0) return attention_scalar(args);
  attention_for_pool<Avx512Vec>(args);
}

}  // namespace llama3::kernels

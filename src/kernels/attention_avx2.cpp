// AVX2 attention: 8 lanes of head_dim at a time. Each cached key/value row is loaded and
// widened once and used for every query head of its group (GQA). head_dim not a multiple of 8
// (no Llama 3 model) falls back to the scalar kernel.
#include <immintrin.h>

#include "kernels/attention.h"
#include "kernels/elementwise.h"

namespace llama3::kernels {
namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <typename T>
void attention_typed(const AttentionArgs& a) {
  const KvPoolView& pool = *a.pool;
  const int64_t hd = pool.head_dim;
  const T* kbase = static_cast<const T*>(pool.k);
  const T* vbase = static_cast<const T*>(pool.v);
  for (int64_t t = 0; t < a.n_ctx; ++t) {
    const int32_t block = a.block_table[static_cast<size_t>(t / pool.block_size)];
    const T* k = kbase + pool.element_offset(block, a.kv_head, t % pool.block_size);
    for (int64_t g = 0; g < a.group; ++g) {
      const float* q = a.q + g * hd;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t i = 0; i < hd; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k + i), acc);
      a.scores[g * a.n_ctx + t] = hsum(acc) * a.scale;
    }
  }
  for (int64_t g = 0; g < a.group; ++g) softmax(a.scores + g * a.n_ctx, a.n_ctx);
  for (int64_t g = 0; g < a.group; ++g) {
    float* out = a.out + g * hd;
    for (int64_t i = 0; i < hd; ++i) out[i] = 0.0f;
  }
  for (int64_t t = 0; t < a.n_ctx; ++t) {
    const int32_t block = a.block_table[static_cast<size_t>(t / pool.block_size)];
    const T* v = vbase + pool.element_offset(block, a.kv_head, t % pool.block_size);
    for (int64_t i = 0; i < hd; i += 8) {
      const __m256 vv = load8(v + i);
      for (int64_t g = 0; g < a.group; ++g) {
        float* out = a.out + g * hd + i;
        const __m256 p = _mm256_set1_ps(a.scores[g * a.n_ctx + t]);
        _mm256_storeu_ps(out, _mm256_fmadd_ps(p, vv, _mm256_loadu_ps(out)));
      }
    }
  }
}

}  // namespace

void attention_avx2(const AttentionArgs& args) {
  if (args.pool->head_dim % 8 != 0) return attention_scalar(args);
  if (args.pool->dtype == KvDType::F32) {
    attention_typed<float>(args);
  } else {
    attention_typed<uint16_t>(args);
  }
}

}  // namespace llama3::kernels

// AVX-512 attention: 16 lanes of head_dim at a time. Each cached key/value row is loaded and
// widened once and used for every query head of its group (GQA). head_dim not a multiple of 16
// (no Llama 3 model) falls back to the scalar kernel.
#include <immintrin.h>

#include "kernels/simd_avx512.h"

#include "kernels/attention.h"
#include "kernels/elementwise.h"

namespace llama3::kernels {
namespace {

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return avx512::widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
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
      __m512 acc = _mm512_setzero_ps();
      for (int64_t i = 0; i < hd; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16(k + i), acc);
      a.scores[g * a.n_ctx + t] = avx512::hsum(acc) * a.scale;
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
    for (int64_t i = 0; i < hd; i += 16) {
      const __m512 vv = load16(v + i);
      for (int64_t g = 0; g < a.group; ++g) {
        float* out = a.out + g * hd + i;
        const __m512 p = _mm512_set1_ps(a.scores[g * a.n_ctx + t]);
        _mm512_storeu_ps(out, _mm512_fmadd_ps(p, vv, _mm512_loadu_ps(out)));
      }
    }
  }
}

}  // namespace

void attention_avx512(const AttentionArgs& args) {
  if (args.pool->head_dim % 16 != 0) return attention_scalar(args);
  if (args.pool->dtype == KvDType::F32) {
    attention_typed<float>(args);
  } else {
    attention_typed<uint16_t>(args);
  }
}

}  // namespace llama3::kernels

#pragma once
// The attention loop, written once for every ISA. `V` supplies the vector operations on
// V::kWidth fp32 lanes (a scalar "vector" of width 1 is the reference); T is the cache's element
// type (float, or uint16_t for bf16). Each cached key/value row is loaded (and widened) once and
// used for every query head of its group (GQA). Included only by the per-ISA kernel files.
#include "kernels/attention.h"
#include "kernels/elementwise.h"

namespace llama3::kernels {

template <typename V, typename T>
void attention_loop(const AttentionArgs& a) {
  using Vec = typename V::Vec;
  const KvPoolView& pool = *a.pool;
  const int64_t hd = pool.head_dim;
  const T* kbase = static_cast<const T*>(pool.k);
  const T* vbase = static_cast<const T*>(pool.v);
  for (int64_t t = 0; t < a.n_ctx; ++t) {
    const int32_t block = a.block_table[static_cast<size_t>(t / pool.block_size)];
    const T* k = kbase + pool.element_offset(block, a.kv_head, t % pool.block_size);
    for (int64_t g = 0; g < a.group; ++g) {
      const float* q = a.q + g * hd;
      Vec acc = V::zero();
      for (int64_t i = 0; i < hd; i += V::kWidth) acc = V::fma(V::load(q + i), V::load(k + i), acc);
      a.scores[g * a.n_ctx + t] = V::hsum(acc) * a.scale;
    }
  }
  for (int64_t g = 0; g < a.group; ++g) softmax(a.scores + g * a.n_ctx, a.n_ctx);
  for (int64_t i = 0; i < a.group * hd; ++i) a.out[i] = 0.0f;
  for (int64_t t = 0; t < a.n_ctx; ++t) {
    const int32_t block = a.block_table[static_cast<size_t>(t / pool.block_size)];
    const T* v = vbase + pool.element_offset(block, a.kv_head, t % pool.block_size);
    for (int64_t i = 0; i < hd; i += V::kWidth) {
      const Vec vv = V::load(v + i);
      for (int64_t g = 0; g < a.group; ++g) {
        float* out = a.out + g * hd + i;
        V::store(out, V::fma(V::set1(a.scores[g * a.n_ctx + t]), vv, V::load(out)));
      }
    }
  }
}

// Runs the loop for the pool's element type.
template <typename V>
void attention_for_pool(const AttentionArgs& a) {
  if (a.pool->dtype == KvDType::F32) {
    attention_loop<V, float>(a);
  } else {
    attention_loop<V, uint16_t>(a);
  }
}

}  // namespace llama3::kernels

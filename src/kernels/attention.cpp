#include "kernels/attention.h"

#include "core/dtype.h"
#include "kernels/cpu_features.h"
#include "kernels/elementwise.h"

namespace llama3::kernels {

void kv_store(const KvPoolView& pool, std::span<const int32_t> block_table, int64_t pos,
              const float* k, const float* v) {
  const int32_t block = block_table[static_cast<size_t>(pos / pool.block_size)];
  const int64_t slot = pos % pool.block_size;
  for (int64_t h = 0; h < pool.n_kv_heads; ++h) {
    const int64_t off = pool.element_offset(block, h, slot);
    const float* ks = k + h * pool.head_dim;
    const float* vs = v + h * pool.head_dim;
    if (pool.dtype == KvDType::F32) {
      float* kd = static_cast<float*>(pool.k) + off;
      float* vd = static_cast<float*>(pool.v) + off;
      for (int64_t i = 0; i < pool.head_dim; ++i) kd[i] = ks[i], vd[i] = vs[i];
    } else {
      uint16_t* kd = static_cast<uint16_t*>(pool.k) + off;
      uint16_t* vd = static_cast<uint16_t*>(pool.v) + off;
      for (int64_t i = 0; i < pool.head_dim; ++i) kd[i] = f32_to_bf16(ks[i]), vd[i] = f32_to_bf16(vs[i]);
    }
  }
}

namespace {

template <typename T>
float load(const T* p, int64_t i) {
  if constexpr (sizeof(T) == 2) {
    return bf16_to_f32(p[i]);
  } else {
    return p[i];
  }
}

template <typename T>
void attention_scalar_typed(const AttentionArgs& a) {
  const KvPoolView& pool = *a.pool;
  const int64_t hd = pool.head_dim;
  const T* kbase = static_cast<const T*>(pool.k);
  const T* vbase = static_cast<const T*>(pool.v);
  for (int64_t t = 0; t < a.n_ctx; ++t) {
    const int32_t block = a.block_table[static_cast<size_t>(t / pool.block_size)];
    const T* k = kbase + pool.element_offset(block, a.kv_head, t % pool.block_size);
    for (int64_t g = 0; g < a.group; ++g) {
      const float* q = a.q + g * hd;
      float dot = 0.0f;
      for (int64_t i = 0; i < hd; ++i) dot += q[i] * load(k, i);
      a.scores[g * a.n_ctx + t] = dot * a.scale;
    }
  }
  for (int64_t g = 0; g < a.group; ++g) softmax(a.scores + g * a.n_ctx, a.n_ctx);
  for (int64_t i = 0; i < a.group * hd; ++i) a.out[i] = 0.0f;
  for (int64_t t = 0; t < a.n_ctx; ++t) {
    const int32_t block = a.block_table[static_cast<size_t>(t / pool.block_size)];
    const T* v = vbase + pool.element_offset(block, a.kv_head, t % pool.block_size);
    for (int64_t g = 0; g < a.group; ++g) {
      const float p = a.scores[g * a.n_ctx + t];
      float* out = a.out + g * hd;
      for (int64_t i = 0; i < hd; ++i) out[i] += p * load(v, i);
    }
  }
}

}  // namespace

void attention_scalar(const AttentionArgs& args) {
  if (args.pool->dtype == KvDType::F32) {
    attention_scalar_typed<float>(args);
  } else {
    attention_scalar_typed<uint16_t>(args);
  }
}

void attention(const AttentionArgs& args) {
  switch (active_isa()) {
    case Isa::Avx512: return attention_avx512(args);
    case Isa::Avx2: return attention_avx2(args);
    case Isa::Scalar: return attention_scalar(args);
  }
}

}  // namespace llama3::kernels

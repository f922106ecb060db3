#include "kernels/attention.h"

#include "core/dtype.h"
#include "kernels/attention_loop.h"
#include "kernels/cpu_features.h"

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

// The reference: a "vector" of one lane.
struct ScalarVec {
  using Vec = float;
  static constexpr int64_t kWidth = 1;
  static float zero() { return 0.0f; }
  static float load(const float* p) { return *p; }
  static float load(const uint16_t* p) { return bf16_to_f32(*p); }
  static float fma(float a, float b, float c) { return a * b + c; }
  static float hsum(float v) { return v; }
  static float set1(float v) { return v; }
  static void store(float* p, float v) { *p = v; }
};

}  // namespace

void attention_scalar(const AttentionArgs& args) { attention_for_pool<ScalarVec>(args); }

void attention(const AttentionArgs& args) {
  switch (active_isa()) {
    case Isa::Avx512: return attention_avx512(args);
    case Isa::Avx2: return attention_avx2(args);
    case Isa::Scalar: return attention_scalar(args);
  }
}

}  // namespace llama3::kernels

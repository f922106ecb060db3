#include "kernels/kv_pool.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"

namespace llama3::kernels {

std::string_view kv_dtype_name(KvDType dtype) {
  switch (dtype) {
    case KvDType::BF16: return "bf16";
    case KvDType::F32: return "f32";
    case KvDType::Q8: return "q8";
  }
  return "?";
}

std::optional<KvDType> kv_dtype_from_name(std::string_view name) {
  for (KvDType d : {KvDType::BF16, KvDType::F32, KvDType::Q8}) {
    if (name == kv_dtype_name(d)) return d;
  }
  return std::nullopt;
}

size_t kv_element_bytes(KvDType dtype) {
  switch (dtype) {
    case KvDType::BF16: return 2;
    case KvDType::F32: return 4;
    case KvDType::Q8: return 1;
  }
  return 0;
}

size_t kv_bytes_per_position(KvDType dtype, int64_t n_kv_heads, int64_t head_dim) {
  const size_t row = static_cast<size_t>(head_dim) * kv_element_bytes(dtype) + (dtype == KvDType::Q8 ? sizeof(float) : 0);
  return 2 * static_cast<size_t>(n_kv_heads) * row;
}

namespace {

// Stores row x ([head_dim]) at element `first`, then every `stride` elements.
void store_row(const KvPoolView& p, void* base, float* scales, int64_t first, int64_t stride, int64_t scale_index,
               const float* x) {
  const int64_t n = p.head_dim;
  switch (p.dtype) {
    case KvDType::F32: {
      float* d = static_cast<float*>(base) + first;
      for (int64_t i = 0; i < n; ++i) d[i * stride] = x[i];
      break;
    }
    case KvDType::BF16: {
      uint16_t* d = static_cast<uint16_t*>(base) + first;
      for (int64_t i = 0; i < n; ++i) d[i * stride] = f32_to_bf16(x[i]);
      break;
    }
    case KvDType::Q8: {
      float amax = 0.0f;
      for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float scale = amax / 127.0f;
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      int8_t* d = static_cast<int8_t*>(base) + first;
      for (int64_t i = 0; i < n; ++i) {
        d[i * stride] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f));
      }
      scales[scale_index] = scale;
      break;
    }
  }
}

float load_element(const KvPoolView& p, const void* base, int64_t index) {
  switch (p.dtype) {
    case KvDType::F32: return static_cast<const float*>(base)[index];
    case KvDType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[index]);
    case KvDType::Q8: return static_cast<float>(static_cast<const int8_t*>(base)[index]);
  }
  return 0.0f;
}

}  // namespace

void kv_store(const KvPoolView& pool, std::span<const int32_t> block_table, int64_t pos, const float* k,
              const float* v) {
  const int32_t block = block_table[static_cast<size_t>(pos / pool.block_size)];
  const int64_t slot = pos % pool.block_size;
  for (int64_t h = 0; h < pool.n_kv_heads; ++h) {
    const int64_t tile = pool.tile_offset(block, h);
    const int64_t scale = pool.scale_offset(block, h) + slot;
    store_row(pool, pool.k, pool.k_scale, tile + slot, pool.block_size, scale, k + h * pool.head_dim);
    store_row(pool, pool.v, pool.v_scale, tile + slot * pool.head_dim, 1, scale, v + h * pool.head_dim);
  }
}

void kv_load(const KvPoolView& pool, std::span<const int32_t> block_table, int64_t pos, int64_t kv_head, float* k,
             float* v) {
  const int32_t block = block_table[static_cast<size_t>(pos / pool.block_size)];
  const int64_t slot = pos % pool.block_size;
  const int64_t tile = pool.tile_offset(block, kv_head);
  const int64_t scale = pool.scale_offset(block, kv_head) + slot;
  const float ks = pool.dtype == KvDType::Q8 ? pool.k_scale[scale] : 1.0f;
  const float vs = pool.dtype == KvDType::Q8 ? pool.v_scale[scale] : 1.0f;
  for (int64_t i = 0; i < pool.head_dim; ++i) {
    k[i] = load_element(pool, pool.k, tile + slot + i * pool.block_size) * ks;
    v[i] = load_element(pool, pool.v, tile + slot * pool.head_dim + i) * vs;
  }
}

}  // namespace llama3::kernels

#include "model/kv_cache.h"

#include "core/error.h"

namespace llama3::model {

KvCache::KvCache(const ModelConfig& c, int64_t num_blocks, int64_t block_size, kernels::KvDType dtype)
    : num_blocks_(num_blocks), block_size_(block_size), dtype_(dtype) {
  check(num_blocks > 0 && block_size > 0, "KV cache: block count {} and block size {} must be positive",
        num_blocks, block_size);
  const size_t positions = static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size);
  const size_t elements = positions * static_cast<size_t>(c.n_kv_heads * c.head_dim);
  const size_t per_pool = elements * kernels::kv_element_bytes(dtype);
  const size_t scales = dtype == kernels::KvDType::Q8 ? positions * static_cast<size_t>(c.n_kv_heads) : 0;
  auto allocate = [&](size_t bytes) {
    storage_.emplace_back(bytes);
    bytes_ += bytes;
    return storage_.back().data();
  };
  for (int64_t l = 0; l < c.n_layers; ++l) {
    kernels::KvPoolView view;
    view.k = allocate(per_pool);
    view.v = allocate(per_pool);
    if (scales) {
      view.k_scale = reinterpret_cast<float*>(allocate(scales * sizeof(float)));
      view.v_scale = reinterpret_cast<float*>(allocate(scales * sizeof(float)));
    }
    view.dtype = dtype;
    view.n_kv_heads = c.n_kv_heads;
    view.block_size = block_size;
    view.head_dim = c.head_dim;
    views_.push_back(view);
  }
}

size_t KvCache::bytes_for(const ModelConfig& c, int64_t num_blocks, int64_t block_size, kernels::KvDType dtype) {
  return static_cast<size_t>(c.n_layers) * static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size) *
         kernels::kv_bytes_per_position(dtype, c.n_kv_heads, c.head_dim);
}

}  // namespace llama3::model

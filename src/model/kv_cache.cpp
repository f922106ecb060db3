#include "model/kv_cache.h"

#include "core/error.h"

namespace llama3::model {

KvCache::KvCache(const ModelConfig& c, int64_t num_blocks, int64_t block_size, kernels::KvDType dtype)
    : num_blocks_(num_blocks), block_size_(block_size), dtype_(dtype) {
  check(num_blocks > 0 && block_size > 0, "KV cache: block count {} and block size {} must be positive",
        num_blocks, block_size);
  const size_t elem = dtype == kernels::KvDType::BF16 ? 2 : 4;
  const size_t per_pool = static_cast<size_t>(num_blocks * c.n_kv_heads * block_size * c.head_dim) * elem;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    kernels::KvPoolView view;
    storage_.push_back(std::make_unique_for_overwrite<std::byte[]>(per_pool));
    view.k = storage_.back().get();
    storage_.push_back(std::make_unique_for_overwrite<std::byte[]>(per_pool));
    view.v = storage_.back().get();
    view.dtype = dtype;
    view.n_kv_heads = c.n_kv_heads;
    view.block_size = block_size;
    view.head_dim = c.head_dim;
    views_.push_back(view);
    bytes_ += 2 * per_pool;
  }
}

}  // namespace llama3::model

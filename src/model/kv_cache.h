#pragma once
// Storage of the paged KV cache: per layer, a pool of blocks of block_size positions for every
// kv head. Which block belongs to which sequence is the runtime's business (its block allocator
// hands out ids and keeps page tables); the forward pass only follows block tables.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/large_buffer.h"
#include "kernels/kv_pool.h"
#include "model/model_config.h"

namespace llama3::model {

class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t num_blocks, int64_t block_size,
          kernels::KvDType dtype = kernels::KvDType::BF16);

  const kernels::KvPoolView& layer(int64_t l) const { return views_[static_cast<size_t>(l)]; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  kernels::KvDType dtype() const { return dtype_; }
  size_t bytes() const { return bytes_; }
  // What a cache of this shape allocates (bytes()), without allocating it.
  static size_t bytes_for(const ModelConfig& config, int64_t num_blocks, int64_t block_size, kernels::KvDType dtype);

 private:
  int64_t num_blocks_;
  int64_t block_size_;
  kernels::KvDType dtype_;
  size_t bytes_ = 0;
  // Pages are committed by the OS only when a block is first written (core/large_buffer.h).
  std::vector<LargeBuffer> storage_;
  std::vector<kernels::KvPoolView> views_;
};

}  // namespace llama3::model

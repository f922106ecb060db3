#pragma once
// Paged attention for one query token against a sequence's cached keys and values.
// The cache is a pool of blocks; a sequence's block table lists, in order, the physical blocks
// holding its positions [0, block_size), [block_size, 2*block_size), ... (vLLM's seam: attention
// takes block tables, the allocator lives in the runtime).
#include <cstdint>
#include <span>

namespace llama3::kernels {

enum class KvDType { BF16, F32 };

// One layer's K or V pool: [num_blocks][n_kv_heads][block_size][head_dim] of `dtype`.
struct KvPoolView {
  void* k = nullptr;
  void* v = nullptr;
  KvDType dtype = KvDType::BF16;
  int64_t n_kv_heads = 0;
  int64_t block_size = 0;
  int64_t head_dim = 0;

  int64_t block_stride() const { return n_kv_heads * block_size * head_dim; }
  int64_t element_offset(int32_t block, int64_t kv_head, int64_t slot) const {
    return block * block_stride() + (kv_head * block_size + slot) * head_dim;
  }
};

struct AttentionArgs {
  const float* q = nullptr;  // [group][head_dim]: the query heads that share kv_head
  int64_t group = 1;
  int64_t kv_head = 0;
  const KvPoolView* pool = nullptr;
  std::span<const int32_t> block_table;
  int64_t n_ctx = 0;      // attend to positions [0, n_ctx)
  float scale = 1.0f;     // 1/sqrt(head_dim)
  float* out = nullptr;   // [group][head_dim]
  float* scores = nullptr;  // scratch, [group][n_ctx]
};

// Writes one position's key and value rows (all kv heads, [n_kv_heads][head_dim]) into the pool.
void kv_store(const KvPoolView& pool, std::span<const int32_t> block_table, int64_t pos,
              const float* k, const float* v);

void attention(const AttentionArgs& args);

void attention_scalar(const AttentionArgs& args);
void attention_avx2(const AttentionArgs& args);
void attention_avx512(const AttentionArgs& args);

}  // namespace llama3::kernels

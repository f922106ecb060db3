#pragma once
// One layer's paged KV cache as the attention kernels see it: a pool of blocks, each holding
// block_size positions of every kv head. A sequence's block table lists, in order, the physical
// blocks holding its positions [0, block_size), [block_size, 2*block_size), ... (vLLM's seam:
// attention takes block tables, the allocator lives in the runtime).
//
// Layout, per block and kv head (the shapes the attention's inner loops want):
//   K: [head_dim][block_size]  transposed, so one vector load holds a dimension of W consecutive
//                              keys and the scores of W keys accumulate in one register;
//   V: [block_size][head_dim]  a position's row, broadcast-multiplied by its probability.
// Q8 stores int8 values with one fp32 scale per position and kv head (a "head row": the 64-128
// values of one key or value), in k_scale / v_scale [num_blocks][n_kv_heads][block_size]. With K
// transposed, a key's scale multiplies its finished score and a value's scale its probability,
// so the 8-bit cache costs no extra arithmetic in the inner loops.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace llama3::kernels {

enum class KvDType { BF16, F32, Q8 };

std::string_view kv_dtype_name(KvDType dtype);  // "bf16", "f32", "q8"
std::optional<KvDType> kv_dtype_from_name(std::string_view name);
size_t kv_element_bytes(KvDType dtype);          // 2, 4, 1
// Bytes one position takes in one layer (K and V of every kv head, scales included).
size_t kv_bytes_per_position(KvDType dtype, int64_t n_kv_heads, int64_t head_dim);

struct KvPoolView {
  void* k = nullptr;
  void* v = nullptr;
  float* k_scale = nullptr;  // Q8 only
  float* v_scale = nullptr;  // Q8 only
  KvDType dtype = KvDType::BF16;
  int64_t n_kv_heads = 0;
  int64_t block_size = 0;
  int64_t head_dim = 0;

  // Elements of one (block, kv head) tile of K or V; the tile of (block, head) starts at
  // tile_offset(block, head) elements (and its scales at scale_offset(block, head)).
  int64_t tile_elements() const { return block_size * head_dim; }
  int64_t tile_offset(int32_t block, int64_t kv_head) const {
    return (static_cast<int64_t>(block) * n_kv_heads + kv_head) * tile_elements();
  }
  int64_t scale_offset(int32_t block, int64_t kv_head) const {
    return (static_cast<int64_t>(block) * n_kv_heads + kv_head) * block_size;
  }
};

// Writes one position's key and value rows (all kv heads, [n_kv_heads][head_dim]) into the pool.
// Q8: per head row, scale = max|x| / 127 and values round(x / scale).
void kv_store(const KvPoolView& pool, std::span<const int32_t> block_table, int64_t pos, const float* k,
              const float* v);

// Reads back one stored key or value row as fp32 (tests, debugging): what attention computes with.
void kv_load(const KvPoolView& pool, std::span<const int32_t> block_table, int64_t pos, int64_t kv_head, float* k,
             float* v);

}  // namespace llama3::kernels

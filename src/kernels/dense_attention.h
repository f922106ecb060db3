#pragma once
// Attention of query rows against a dense set of keys and values held in one buffer, each query
// row seeing a contiguous range of the keys: no causal order, no paging. Two users:
//  - the vision encoder's attention over an image's tiles (every token sees every key, except
//    that padding tokens see only the real ones: the caller orders the keys real-first, so both
//    are ranges);
//  - the text decoder's cross-attention to the images of a request (a text token sees the image
//    group before it: the caller stores the images in order, so a group is a range).
// Keys are stored transposed per kv head ([head_dim][key_stride]) so one vector load holds one
// dimension of W consecutive keys and W scores accumulate in one register (as kv_pool.h's K);
// values are rows ([key_stride][head_dim]). A task takes up to kDenseRows query rows of one kv
// head: its tokens times the query heads that share that kv head (so a decode step's one token
// still fills a tile with the group's heads), and streams the keys in blocks of kDenseKeyBlock (flash-attention style: a running max and sum
// per row, the output rescaled when the max grows), so each key block is read from memory once
// for many rows and stays in L2 while they pass; exp as vector_exp.h.
#include <cstdint>
#include <span>

namespace llama3::kernels {

// Consecutive query rows that see the same keys [key_begin, key_end) (key_end > key_begin).
struct QueryRun {
  int64_t first_row = 0;
  int64_t n_rows = 0;
  int64_t key_begin = 0;
  int64_t key_end = 0;
};

struct DenseAttention {
  const float* q = nullptr;  // row r, query head h: q + r * q_stride + h * head_dim
  int64_t q_stride = 0;
  float* out = nullptr;      // same indexing with out_stride
  int64_t out_stride = 0;
  int64_t n_heads = 0;       // query heads; n_heads / n_kv_heads share each kv head
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  const float* kt = nullptr;  // [n_kv_heads][head_dim][key_stride]
  const float* v = nullptr;   // [n_kv_heads][key_stride][head_dim]
  int64_t key_stride = 0;     // keys held per head (>= every key_end)
  float scale = 1.0f;         // 1/sqrt(head_dim)
  std::span<const QueryRun> runs;
};

// Splits the runs into tasks of a few rows and one query head each, over the threads. The split
// never depends on the thread count, so results are the same bits on any number of threads.
void dense_attention(const DenseAttention& job);

// ---- Internals shared by dense_attention.cpp and the per-ISA files ----
inline constexpr int64_t kDenseRows = 64;       // query rows (token x head of the group) per task
inline constexpr int64_t kDenseKeyBlock = 256;  // keys per block: 80 KB of K and of V at head_dim 80
inline constexpr int64_t kDenseRowTile = 8;     // rows per register tile
static_assert(kDenseRows % kDenseRowTile == 0, "a task's padded last tile stays inside its scratch rows");

// Tokens [first_row, first_row + n_rows) (n_rows x the group's query heads <= kDenseRows rows)
// of kv head `kv_head` against keys [key_begin, key_end); `scratch` has room for
// dense_scratch_floats(head_dim) floats.
struct DenseTask {
  const DenseAttention* job = nullptr;
  int64_t first_row = 0, n_rows = 0, kv_head = 0, key_begin = 0, key_end = 0;
  float* scratch = nullptr;
};
inline int64_t dense_scratch_floats(int64_t head_dim) { return kDenseRows * (kDenseKeyBlock + head_dim + 2); }

void dense_attention_task_scalar(const DenseTask& task);
void dense_attention_task_avx2(const DenseTask& task);
void dense_attention_task_avx512(const DenseTask& task);

}  // namespace llama3::kernels

#pragma once
// Causal attention of a batch of sequences' new tokens against the paged KV cache (kv_pool.h).
// One call serves prefill chunks and decode steps; it splits the work over the threads itself:
//  - a sequence with several new tokens (prefill) is cut into tiles of consecutive tokens, one
//    task per (tile, kv head): flash-attention style, the K/V blocks stream through once per
//    tile, the query heads of the kv group and the tile's tokens share each loaded block, the
//    softmax is online (no sequence x sequence buffer) and the causal mask skips whole blocks;
//  - a sequence with one new token (decode) is cut along its context into partitions of a fixed
//    number of positions (kDecodePartition, rounded to blocks), one task per partition (and kv
//    heads when there are few), so batch 1 at long context uses every core; the partitions'
//    partial softmaxes are merged in order afterwards.
// The split never depends on the thread count or on the other sequences in the batch, so a
// sequence's result is bitwise the same alone, in any batch and on any number of threads.
#include <cstdint>
#include <span>

#include "kernels/kv_pool.h"

namespace llama3::kernels {

// Context positions per decode partition (rounded down to whole blocks, at least one).
inline constexpr int64_t kDecodePartition = 1024;
// Query rows (tokens x query heads of a kv group) per prefill task, at least one token.
// 128 (32 tokens of a 4-head group) rather than 64: each widened K/V block serves twice the rows,
// 10% faster at 32k on the Xeon (256 rows: no better).
inline constexpr int64_t kPrefillRows = 128;

// One sequence's new tokens: rows [first_row, first_row + n_tokens) of q and out, at positions
// start_pos, start_pos + 1, ...; token i attends to the positions [0, start_pos + i] of the
// cache, which must already hold them (kv_store before the call).
struct AttentionSequence {
  int64_t first_row = 0;
  int64_t n_tokens = 0;
  int64_t start_pos = 0;
  std::span<const int32_t> block_table;
};

struct AttentionBatch {
  const float* q = nullptr;  // [rows][n_heads][head_dim]
  float* out = nullptr;      // [rows][n_heads][head_dim]
  int64_t n_heads = 0;       // query heads; n_heads / pool->n_kv_heads share each kv head
  const KvPoolView* pool = nullptr;
  float scale = 1.0f;        // 1/sqrt(head_dim)
  std::span<const AttentionSequence> sequences;
};

void attention(const AttentionBatch& batch);

// ---- Internals shared by attention.cpp and the per-ISA files ----

// One task: the rows of n_tokens consecutive tokens for the kv heads [head_begin, head_end),
// against the keys [key_begin, key_end) (key_begin a multiple of the block size). With `partial`
// null the normalized result goes to out; otherwise the unnormalized sum, the running max and
// the sum of exponentials of each row go to partial: per kv head and row (row = token * group +
// query head in group), head_dim + 2 floats.
struct AttentionTask {
  const float* q = nullptr;  // token i, query head h: q + i * q_stride + h * head_dim
  float* out = nullptr;      // same indexing
  int64_t q_stride = 0;
  int64_t n_tokens = 0;
  int64_t first_pos = 0;
  int64_t head_begin = 0, head_end = 0;
  int64_t group = 1;
  const KvPoolView* pool = nullptr;
  std::span<const int32_t> block_table;
  int64_t key_begin = 0, key_end = 0;
  float scale = 1.0f;
  float* partial = nullptr;
};

void attention_task_scalar(const AttentionTask& task);
void attention_task_avx2(const AttentionTask& task);
void attention_task_avx512(const AttentionTask& task);

}  // namespace llama3::kernels

#include "kernels/attention.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/attention_tile.h"
#include "kernels/cpu_features.h"

namespace llama3::kernels {

void attention_task_scalar(const AttentionTask& task) {
  switch (task.pool->dtype) {
    case KvDType::F32: return attention_detail::run_task<ScalarLane, float>(task);
    case KvDType::BF16: return attention_detail::run_task<ScalarLane, uint16_t>(task);
    case KvDType::Q8: return attention_detail::run_task<ScalarLane, int8_t>(task);
  }
}

namespace {

using TaskFn = void (*)(const AttentionTask&);

TaskFn task_function() {
  switch (active_isa()) {
    case Isa::Avx512: return attention_task_avx512;
    case Isa::Avx2: return attention_task_avx2;
    case Isa::Scalar: return attention_task_scalar;
  }
  return attention_task_scalar;
}

// A decode token whose context was split into partitions: its rows are merged from the partial
// softmaxes the partitions left at `partial` (one after the other, `stride` floats apart).
struct Merge {
  const float* partial = nullptr;
  int64_t n_parts = 0;
  float* out = nullptr;  // the token's output row [n_heads][head_dim]
};

// out = sum_p acc_p * e^(m_p - M) / sum_p l_p * e^(m_p - M), M the largest m_p, in partition order.
void merge(const Merge& m, int64_t n_kv_heads, int64_t group, int64_t hd) {
  const int64_t sw = hd + 2;
  const int64_t stride = n_kv_heads * group * sw;
  float acc[1024];  // head_dim <= 1024, checked by attention()
  for (int64_t row = 0; row < n_kv_heads * group; ++row) {
    float max = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < m.n_parts; ++p) max = std::max(max, m.partial[p * stride + row * sw + hd]);
    float sum = 0.0f;
    std::fill(acc, acc + hd, 0.0f);
    for (int64_t p = 0; p < m.n_parts; ++p) {
      const float* st = m.partial + p * stride + row * sw;
      if (st[hd + 1] == 0.0f) continue;
      const float w = attention_detail::exp_scalar(st[hd] - max);
      sum += st[hd + 1] * w;
      for (int64_t i = 0; i < hd; ++i) acc[i] += st[i] * w;
    }
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    float* dst = m.out + row * hd;  // row = kv head * group + query head in group = query head
    for (int64_t i = 0; i < hd; ++i) dst[i] = acc[i] * inv;
  }
}

}  // namespace

void attention(const AttentionBatch& b) {
  const KvPoolView& pool = *b.pool;
  const int64_t hd = pool.head_dim;
  const int64_t bs = pool.block_size;
  const int64_t n_kv = pool.n_kv_heads;
  check(n_kv > 0 && b.n_heads % n_kv == 0 && hd <= 1024, "attention: {} query heads cannot share {} kv heads", b.n_heads,
        n_kv);
  const int64_t group = b.n_heads / n_kv;
  const int64_t q_stride = b.n_heads * hd;
  const int64_t part_keys = std::max<int64_t>(1, kDecodePartition / bs) * bs;
  const int64_t tile_tokens = std::max<int64_t>(1, kPrefillRows / group);
  const int64_t part_floats = n_kv * group * (hd + 2);

  // Decode tasks may be split over kv heads when there are too few to keep every core busy
  // (batch 1 at short context); the split does not change any result.
  int64_t decode_tasks = 0, prefill_tasks = 0;
  for (const AttentionSequence& s : b.sequences) {
    check(static_cast<int64_t>(s.block_table.size()) * bs >= s.start_pos + s.n_tokens,
          "attention: block table covers {} positions, the sequence needs {}", s.block_table.size() * bs,
          s.start_pos + s.n_tokens);
    if (s.n_tokens == 1) decode_tasks += (s.start_pos + part_keys) / part_keys;
    if (s.n_tokens > 1) prefill_tasks += (s.n_tokens + tile_tokens - 1) / tile_tokens * n_kv;
  }
  const int64_t want = 4 * thread_count();
  const int64_t head_split =
      decode_tasks + prefill_tasks >= want || decode_tasks == 0
          ? 1
          : std::min(n_kv, (want - prefill_tasks + decode_tasks - 1) / decode_tasks);
  const int64_t heads_per_task = (n_kv + head_split - 1) / head_split;

  thread_local std::vector<AttentionTask> tasks;
  thread_local std::vector<Merge> merges;
  thread_local std::vector<float> partials;
  tasks.clear();
  merges.clear();
  int64_t partial_floats = 0;
  for (const AttentionSequence& s : b.sequences) {
    if (s.n_tokens == 1) {
      const int64_t n_parts = (s.start_pos + part_keys) / part_keys;
      if (n_parts > 1) partial_floats += n_parts * part_floats;
    }
  }
  partials.resize(static_cast<size_t>(partial_floats));

  int64_t partial_at = 0;
  for (const AttentionSequence& s : b.sequences) {
    AttentionTask t;
    t.q_stride = q_stride;
    t.group = group;
    t.pool = &pool;
    t.block_table = s.block_table;
    t.scale = b.scale;
    if (s.n_tokens == 1) {
      const int64_t n_ctx = s.start_pos + 1;
      const int64_t n_parts = (n_ctx + part_keys - 1) / part_keys;
      t.q = b.q + s.first_row * q_stride;
      t.out = b.out + s.first_row * q_stride;
      t.n_tokens = 1;
      t.first_pos = s.start_pos;
      if (n_parts > 1) merges.push_back({partials.data() + partial_at, n_parts, t.out});
      for (int64_t p = 0; p < n_parts; ++p) {
        t.key_begin = p * part_keys;
        t.key_end = std::min(n_ctx, t.key_begin + part_keys);
        t.partial = n_parts > 1 ? partials.data() + partial_at + p * part_floats : nullptr;
        for (int64_t h = 0; h < n_kv; h += heads_per_task) {
          t.head_begin = h;
          t.head_end = std::min(n_kv, h + heads_per_task);
          tasks.push_back(t);
        }
      }
      if (n_parts > 1) partial_at += n_parts * part_floats;
    } else {
      // Later tiles see more keys: queued first, so the uneven tail of the work is small.
      const int64_t n_tiles = (s.n_tokens + tile_tokens - 1) / tile_tokens;
      for (int64_t tile = n_tiles - 1; tile >= 0; --tile) {
        const int64_t i = tile * tile_tokens;
        t.q = b.q + (s.first_row + i) * q_stride;
        t.out = b.out + (s.first_row + i) * q_stride;
        t.n_tokens = std::min(tile_tokens, s.n_tokens - i);
        t.first_pos = s.start_pos + i;
        t.key_begin = 0;
        t.key_end = t.first_pos + t.n_tokens;
        for (int64_t h = 0; h < n_kv; ++h) {
          t.head_begin = h;
          t.head_end = h + 1;
          tasks.push_back(t);
        }
      }
    }
  }

  // The worker threads see their own thread_locals: hand them this thread's lists.
  const std::vector<AttentionTask>& task_list = tasks;
  const std::vector<Merge>& merge_list = merges;
  const TaskFn fn = task_function();
  parallel_tasks(task_list.size(), [&](size_t i) { fn(task_list[i]); });
  if (!merge_list.empty()) {
    parallel_tasks(merge_list.size(), [&](size_t i) { merge(merge_list[i], n_kv, group, hd); });
  }
}

}  // namespace llama3::kernels

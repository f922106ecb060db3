#include "kernels/dense_attention.h"

#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/cpu_features.h"
#include "kernels/dense_attention_tile.h"
#include "kernels/simd_scalar.h"

namespace llama3::kernels {

void dense_attention_task_scalar(const DenseTask& task) { dense_detail::run_task<ScalarLane>(task); }

namespace {

using TaskFn = void (*)(const DenseTask&);

TaskFn task_function() {
  switch (active_isa()) {
    case Isa::Avx512: return dense_attention_task_avx512;
    case Isa::Avx2: return dense_attention_task_avx2;
    case Isa::Scalar: return dense_attention_task_scalar;
  }
  return dense_attention_task_scalar;
}

}  // namespace

void dense_attention(const DenseAttention& job) {
  check(job.n_heads > 0 && job.n_kv_heads > 0 && job.n_heads % job.n_kv_heads == 0 && job.head_dim > 0,
        "dense attention: {} query heads cannot share {} kv heads", job.n_heads, job.n_kv_heads);
  struct Piece {
    int64_t first_row, n_rows, kv_head, key_begin, key_end;
  };
  const int64_t group = job.n_heads / job.n_kv_heads;
  check(group <= kDenseRows, "dense attention: {} query heads per kv head (at most {})", group, kDenseRows);
  const int64_t tokens_per_task = kDenseRows / group;
  std::vector<Piece> pieces;
  for (const QueryRun& run : job.runs) {
    check(run.key_begin >= 0 && run.key_begin < run.key_end && run.key_end <= job.key_stride && run.n_rows >= 0,
          "dense attention: keys [{}, {}) outside the {} held", run.key_begin, run.key_end, job.key_stride);
    for (int64_t r = 0; r < run.n_rows; r += tokens_per_task) {
      for (int64_t h = 0; h < job.n_kv_heads; ++h) {
        pieces.push_back({run.first_row + r, std::min(tokens_per_task, run.n_rows - r), h, run.key_begin, run.key_end});
      }
    }
  }
  const TaskFn fn = task_function();
  parallel_tasks(pieces.size(), [&](size_t i) {
    thread_local std::vector<float> scratch;
    const auto need = static_cast<size_t>(dense_scratch_floats(job.head_dim));
    if (scratch.size() < need) scratch.resize(need);
    const Piece& p = pieces[i];
    fn(DenseTask{&job, p.first_row, p.n_rows, p.kv_head, p.key_begin, p.key_end, scratch.data()});
  });
}

}  // namespace llama3::kernels

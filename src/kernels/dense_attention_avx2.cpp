// AVX2 dense attention tasks: the shared loops (dense_attention_tile.h) on 8 fp32 lanes. A
// head_dim that is not a multiple of the width runs the scalar reference.
#include "kernels/dense_attention_tile.h"
#include "kernels/simd_avx2.h"

namespace llama3::kernels {

void dense_attention_task_avx2(const DenseTask& task) {
  if (task.job->head_dim % Avx2Vec::kWidth != 0) return dense_attention_task_scalar(task);
  dense_detail::run_task<Avx2Vec>(task);
}

}  // namespace llama3::kernels

// AVX512 attention tasks: the shared loops (attention_tile.h) on 16 fp32 lanes. A head_dim that is
// not a multiple of 16 (no Llama 3 model) runs the scalar reference.
#include "kernels/attention_tile.h"
#include "kernels/simd_avx512.h"

namespace llama3::kernels {

void attention_task_avx512(const AttentionTask& task) {
  if (task.pool->head_dim % Avx512Vec::kWidth != 0) return attention_task_scalar(task);
  switch (task.pool->dtype) {
    case KvDType::F32: return attention_detail::run_task<Avx512Vec, float>(task);
    case KvDType::BF16: return attention_detail::run_task<Avx512Vec, uint16_t>(task);
    case KvDType::Q8: return attention_detail::run_task<Avx512Vec, int8_t>(task);
  }
}

}  // namespace llama3::kernels

// AVX2 attention tasks: the shared loops (attention_tile.h) on 8 fp32 lanes. A head_dim that is
// not a multiple of 8 (no Llama 3 model) runs the scalar reference.
#include "kernels/attention_tile.h"
#include "kernels/simd_avx2.h"

namespace llama3::kernels {

void attention_task_avx2(const AttentionTask& task) {
  if (task.pool->head_dim % Avx2Vec::kWidth != 0) return attention_task_scalar(task);
  switch (task.pool->dtype) {
    case KvDType::F32: return attention_detail::run_task<Avx2Vec, float>(task);
    case KvDType::BF16: return attention_detail::run_task<Avx2Vec, uint16_t>(task);
    case KvDType::Q8: return attention_detail::run_task<Avx2Vec, int8_t>(task);
  }
}

}  // namespace llama3::kernels

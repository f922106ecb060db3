// AVX-512 attention: the shared loop (attention_loop.h) on 16 fp32 lanes. head_dim not a
// multiple of 16 (no Llama 3 model) falls back to the scalar kernel.
#include "kernels/attention_loop.h"
#include "kernels/simd_avx512.h"

namespace llama3::kernels {

void attention_avx512(const AttentionArgs& args) {
  if (args.pool->head_dim % Avx512Vec::kWidth != 0) return attention_scalar(args);
  attention_for_pool<Avx512Vec>(args);
}

}  // namespace llama3::kernels

// AVX2 attention: the shared loop (attention_loop.h) on 8 fp32 lanes. head_dim not a multiple
// of 8 falls back to the scalar kernel.
#include "kernels/attention_loop.h"
#include "kernels/simd_avx2.h"

namespace llama3::kernels {

void attention_avx2(const AttentionArgs& args) {
  if (args.pool->head_dim % Avx2Vec::kWidth != 0) return attention_scalar(args);
  attention_for_pool<Avx2Vec>(args);
}

}  // namespace llama3::kernels

// AVX2 element-wise loops (elementwise_loops.h on 8 lanes).
#include "kernels/elementwise_loops.h"
#include "kernels/simd_avx2.h"

namespace llama3::kernels {

void silu_mul_avx2(float* gate, const float* up, int64_t n) { silu_mul_loop<Avx2Vec>(gate, up, n); }

}  // namespace llama3::kernels

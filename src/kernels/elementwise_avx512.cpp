// AVX-512 element-wise loops (elementwise_loops.h on 16 lanes).
#include "kernels/elementwise_loops.h"
#include "kernels/simd_avx512.h"

namespace llama3::kernels {

void silu_mul_avx512(float* gate, const float* up, int64_t n) { silu_mul_loop<Avx512Vec>(gate, up, n); }

}  // namespace llama3::kernels

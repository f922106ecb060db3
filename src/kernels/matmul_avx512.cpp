// AVX-512 bf16 x fp32 matrix product: the shared tile loop (matmul_tile.h) on 16 lanes, tiles of
// 4 weight rows x 4 batch rows (16 accumulators of the 32 zmm registers).
#include "kernels/matmul_tile.h"
#include "kernels/simd_avx512.h"

namespace llama3::kernels {

void matmul_bf16_rows_avx512(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  matmul_rows<Avx512Vec, 4>(job, row_begin, row_end);
}

}  // namespace llama3::kernels

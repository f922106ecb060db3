// AVX2 + FMA bf16 x fp32 matrix product, for CPUs without AVX-512: the shared tile loop
// (matmul_tile.h) on 8 lanes, tiles of 4 weight rows x 2 batch rows (8 accumulators of the 16
// ymm registers).
#include "kernels/matmul_tile.h"
#include "kernels/simd_avx2.h"

namespace llama3::kernels {

void matmul_bf16_rows_avx2(const MatmulJob& job, int64_t row_begin, int64_t row_end) {
  matmul_rows<Avx2Vec, 2>(job, row_begin, row_end);
}

}  // namespace llama3::kernels
